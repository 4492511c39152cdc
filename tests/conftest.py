"""Session-wide test setup: offline Hugging Face, no network, tiny pipelines built once per session."""
from __future__ import annotations

import os

# Set before anything imports huggingface_hub: it reads these once at import time.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["DIFFUSERS_NO_ADVISORY_WARNINGS"] = "1"

import socket

import pytest


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models run 10-40x faster on one thread on a shared 2-core box (measured): no thread contention."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


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


@pytest.fixture(scope="session")
def tiny_sdxl_pipe():
    """A tiny SDXL-base-shaped StableDiffusionXLPipeline (seed 0), shared by the session: do not mutate."""
    from tests.fixtures.tiny_models import build_tiny_sdxl_pipeline

    return build_tiny_sdxl_pipeline(seed=0)


@pytest.fixture(scope="session")
def tiny_checkpoints_dir(tmp_path_factory):
    """A session folder holding the tiny checkpoint files (treat as read-only; copy before changing)."""
    return tmp_path_factory.mktemp("tiny-checkpoints")


@pytest.fixture(scope="session")
def tiny_sd15_checkpoint(tiny_checkpoints_dir):
    """TinyCheckpoint: SD1.5-shaped A1111 .safetensors with LDM keys, config in `<stem>.config/`."""
    from tests.fixtures.checkpoints import write_single_file

    return write_single_file("sd15", tiny_checkpoints_dir)


@pytest.fixture(scope="session")
def tiny_sd15_ckpt(tiny_checkpoints_dir):
    """TinyCheckpoint: the same SD1.5-shaped weights as a pickled .ckpt ({"state_dict": ...})."""
    from tests.fixtures.checkpoints import write_single_file

    return write_single_file("sd15", tiny_checkpoints_dir, stem="tiny-sd15-pickled", suffix=".ckpt")


@pytest.fixture(scope="session")
def tiny_sdxl_checkpoint(tiny_checkpoints_dir):
    """TinyCheckpoint: SDXL-base-shaped A1111 .safetensors (conditioner.embedders.0/1 text encoders)."""
    from tests.fixtures.checkpoints import write_single_file

    return write_single_file("sdxl-base", tiny_checkpoints_dir)


@pytest.fixture(scope="session")
def tiny_sdxl_refiner_checkpoint(tiny_checkpoints_dir):
    """TinyCheckpoint: SDXL-refiner-shaped A1111 .safetensors (OpenCLIP only, in conditioner.embedders.0)."""
    from tests.fixtures.checkpoints import write_single_file

    return write_single_file("sdxl-refiner", tiny_checkpoints_dir)


@pytest.fixture(scope="session")
def tiny_inpaint_checkpoint(tiny_checkpoints_dir):
    """TinyCheckpoint: SD1.5-inpainting-shaped A1111 .safetensors (9-channel UNet input)."""
    from tests.fixtures.checkpoints import write_single_file

    return write_single_file("sd15-inpaint", tiny_checkpoints_dir)


@pytest.fixture(scope="session")
def tiny_diffusers_folder(tmp_path_factory):
    """TinyCheckpoint: the SD1.5-shaped pipeline saved with save_pretrained (a diffusers folder)."""
    from tests.fixtures.checkpoints import write_diffusers_folder

    return write_diffusers_folder("sd15", tmp_path_factory.mktemp("tiny-diffusers") / "tiny-sd15-diffusers")
