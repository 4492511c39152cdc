"""Session-wide test setup: offline Hugging Face, no network, tiny pipelines built once per session."""
from __future__ import annotations

import os

# Set before anything imports huggingface_hub: it reads these once at import time.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["DIFFUSERS_NO_ADVISORY_WARNINGS"] = "1"

import socket  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def no_network(monkeypatch):
    """Make any outgoing socket connection fail loudly, so a test proves it stays offline."""

    def refuse(self, address, *args, **kwargs):
        raise AssertionError(f"test tried to open a network connection to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))


@pytest.fixture(scope="session")
def tiny_sd15_pipe():
    """A tiny SD1.5-shaped StableDiffusionPipeline (seed 0), shared by the session: do not mutate."""
    from tests.fixtures.tiny_models import build_tiny_sd15_pipeline

    return build_tiny_sd15_pipeline(seed=0)
