"""A cached model switch (A1111's "Maximum number of checkpoints loaded at the same time") swaps references:
on the CPU no weights move and no full garbage collection runs (gc.collect cost 2.2 s per switch with SD
1.5-size models in memory); a model the cache lets go is still freed at once."""
from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

from modules.devices import DeviceFlags, DeviceInfo, MemoryPolicy, choose_policy
from modules.pipelines.manager import PipelineManager
from modules.pipelines.registry import CheckpointInfo


class MovingPipe:
    """What the manager touches of a pipeline; counts every move (`to` with a device)."""

    text_encoder_2 = None
    vae = None
    unet = None

    def __init__(self, path: Path):
        self.path = path
        self.device = "cpu"
        self.moves = 0

    def to(self, device=None, dtype=None):
        if device is not None:
            self.moves += 1
            self.device = str(device)
        return self

    def set_progress_bar_config(self, **kwargs):
        pass


class Loader:
    def __init__(self):
        self.made: list[weakref.ref] = []

    def __call__(self, path, config_dir=None, dtype=None):
        pipe = MovingPipe(Path(path))
        self.made.append(weakref.ref(pipe))
        return pipe, None


def checkpoint(name: str) -> CheckpointInfo:
    path = Path(f"/models/{name}.safetensors")
    return CheckpointInfo(path, path.name, name)


A, B, C = (checkpoint(n) for n in ("model-a", "model-b", "model-c"))
GPU = MemoryPolicy(device="cuda:0", dtype="float16", vae_dtype="float16")


@pytest.fixture
def collections(monkeypatch):
    calls = []
    real = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append(args) or real(*args))
    return calls


def test_a_cached_switch_on_the_cpu_moves_nothing_and_collects_nothing(collections):
    manager = PipelineManager(lambda family: choose_policy(DeviceInfo(), DeviceFlags(), family), cache_size=2,
                              loader=Loader())
    first = manager.load(A)
    second = manager.load(B)
    moves = (first.pipe.moves, second.pipe.moves)
    collections.clear()
    for _ in range(2):  # A -> B -> A ... all from the cache
        assert manager.load(A) is first
        assert manager.load(B) is second
    assert (first.pipe.moves, second.pipe.moves) == moves
    assert collections == []


def test_a_cached_switch_on_a_gpu_parks_on_the_cpu_without_a_full_collection(collections):
    manager = PipelineManager(lambda family: GPU, cache_size=2, loader=Loader())
    first = manager.load(A)
    manager.load(B)
    collections.clear()
    assert manager.load(A) is first and first.pipe.device == "cuda:0"
    assert collections == []


def test_a_model_the_cache_drops_is_freed_at_once():
    loader = Loader()
    manager = PipelineManager(lambda family: GPU, cache_size=1, loader=loader)
    manager.load(A)
    manager.load(B)  # A waits in the cache
    manager.load(C)  # B joins the cache, A drops out of it
    assert loader.made[0]() is None
    manager.set_cache_size(0)  # B drops too
    assert loader.made[1]() is None and loader.made[2]() is manager.current.pipe
