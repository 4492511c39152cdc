"""The demo checkpoint (tiny, deterministic, offline) and the polite default-model download."""
from __future__ import annotations

import hashlib
import logging
import socket
import time

import numpy as np
import pytest
import torch

from modules.pipelines import default_model
from modules.pipelines.demo import DEMO_FILENAME, ensure_demo_checkpoint, is_demo_checkpoint
from modules.pipelines.loading import load_pipeline


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_demo_checkpoint_is_identical_every_time(tmp_path):
    a = ensure_demo_checkpoint(tmp_path / "a")
    b = ensure_demo_checkpoint(tmp_path / "b" / "nested")
    assert a.name == b.name == DEMO_FILENAME
    assert _sha256(a) == _sha256(b)
    stamp = a.stat().st_mtime_ns
    assert ensure_demo_checkpoint(tmp_path / "a") == a
    assert a.stat().st_mtime_ns == stamp  # kept, not rewritten
    assert not list((tmp_path / "a").glob(".*.tmp"))


def test_demo_checkpoint_loads_offline_and_generates(tmp_path, no_network):
    path = ensure_demo_checkpoint(tmp_path)
    assert is_demo_checkpoint(path)
    renamed = path.rename(tmp_path / "my-demo.safetensors")  # known by its metadata, not its name
    pipe, info = load_pipeline(renamed)
    pipe.set_progress_bar_config(disable=True)
    assert (info.architecture, info.config_source) == ("sd15", "demo")
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    image = pipe("a lighthouse", num_inference_steps=2, height=64, width=64, output_type="np",
                 generator=torch.Generator().manual_seed(0)).images
    assert image.shape == (1, 64, 64, 3) and np.isfinite(image).all() and image.std() > 0.01


def test_other_files_are_not_the_demo(tiny_sd15_checkpoint, tmp_path):
    assert not is_demo_checkpoint(tiny_sd15_checkpoint.path)
    assert not is_demo_checkpoint(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\xff" * 16)
    assert not is_demo_checkpoint(junk)


def test_download_returns_none_when_hub_offline(tmp_path, caplog, no_network):
    caplog.set_level(logging.INFO, logger=default_model.__name__)
    assert default_model.download_default_model(tmp_path / "Stable-diffusion") is None
    assert len(caplog.records) == 1 and "HF_HUB_OFFLINE" in caplog.records[0].getMessage()
    assert caplog.records[0].exc_info is None


def test_download_fails_fast_without_a_network(tmp_path, caplog, monkeypatch):
    from huggingface_hub import constants

    def unreachable(*args, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(socket.socket, "connect", unreachable)
    caplog.set_level(logging.INFO, logger=default_model.__name__)
    start = time.perf_counter()
    assert default_model.download_default_model(tmp_path / "Stable-diffusion", timeout_s=1) is None
    assert time.perf_counter() - start < 2
    [record] = caplog.records
    assert "unreachable" in record.getMessage() and record.exc_info is None
    assert not (tmp_path / "Stable-diffusion").exists()  # nothing half-made left behind


def test_download_skips_when_the_file_is_there(tmp_path, no_network):
    target = tmp_path / default_model.DEFAULT_FILENAME
    target.write_bytes(b"x")
    assert default_model.download_default_model(tmp_path) == target


@pytest.mark.parametrize("size", [512])
def test_demo_is_fast_at_full_size(size):
    """The demo stays quick at the UI default 512x512 on a CPU (loose bound: shared CI machines are busy)."""
    from modules.pipelines.demo import build_demo_pipeline

    pipe = build_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)
    stamps = []
    pipe(prompt="a lighthouse", num_inference_steps=4, height=size, width=size, output_type="latent",
         callback_on_step_end=lambda p, i, t, kw: stamps.append(time.perf_counter()) or kw)
    per_step = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    # ~0.06 s/step on an idle 2-core CPU; a full-size SD1.5 UNet would take tens of seconds
    assert per_step < 5.0, f"{per_step:.3f} s/step"
