"""The pipeline manager: switching frees the old model before loading the next, the RAM cache keeps N on
the CPU, a failed load brings the previous model back, the VAE choice applies."""
from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from modules.devices import DeviceFlags, DeviceInfo, MemoryPolicy, choose_policy
from modules.pipelines.loading import CheckpointError
from modules.pipelines.manager import PipelineManager
from modules.pipelines.registry import CheckpointInfo
from tests.fixtures.checkpoints import write_single_file


def cpu_policy(family):
    return choose_policy(DeviceInfo(), DeviceFlags(), family)


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("switch")
    a = write_single_file("sd15", folder, stem="model-a", seed=1)
    b = write_single_file("sd15", folder, stem="model-b", seed=2)
    return [CheckpointInfo(c.path, c.path.name, c.path.stem) for c in (a, b)]


def live_tensor_bytes() -> int:
    gc.collect()
    total = 0
    for obj in gc.get_objects():
        try:
            if type(obj) in (torch.Tensor, torch.nn.Parameter) and not obj.is_meta:
                total += obj.untyped_storage().nbytes()
        except Exception:  # objects that die or refuse introspection while we walk
            continue
    return total


# Four switches (two of each model) already show a leak; the ten-switch soak runs with -m slow.
@pytest.mark.parametrize("switches", [4, pytest.param(10, marks=pytest.mark.slow)])
def test_switches_leave_memory_flat(two_checkpoints, switches):
    manager = PipelineManager(cpu_policy)
    manager.load(two_checkpoints[0])
    manager.load(two_checkpoints[1])
    baseline = live_tensor_bytes()
    unets = []
    for i in range(switches):
        loaded = manager.load(two_checkpoints[i % 2])
        unets.append(weakref.ref(loaded.pipe.unet))
        del loaded
    gc.collect()
    alive = [ref for ref in unets if ref() is not None]
    assert len(alive) == 1 and alive[0]() is manager.current.pipe.unet  # every switched-out UNet was freed
    growth = live_tensor_bytes() - baseline
    assert abs(growth) < 1_000_000, f"tensor memory grew by {growth} bytes over {switches} switches"


def test_cache_keeps_n_models_and_reuses_them(two_checkpoints):
    manager = PipelineManager(cpu_policy, cache_size=1)
    first = manager.load(two_checkpoints[0])
    manager.load(two_checkpoints[1])
    again = manager.load(two_checkpoints[0])
    assert again is first  # came back from the RAM cache, not from disk
    manager.set_cache_size(0)
    unet = weakref.ref(manager.load(two_checkpoints[1]).pipe.unet)
    manager.load(two_checkpoints[0])
    gc.collect()
    assert unet() is None


def test_vae_file_replaces_the_baked_vae_and_none_keeps_it(two_checkpoints, tmp_path):
    ckpt = two_checkpoints[0]
    plain = PipelineManager(cpu_policy).load(ckpt)
    state = {k: v + 0.05 * torch.randn_like(v) for k, v in plain.pipe.vae.state_dict().items()}
    vae_file = tmp_path / "other.vae.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(vae_file))

    with_vae = PipelineManager(cpu_policy, vae_for=lambda c: vae_file).load(ckpt)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = plain.pipe.vae.decode(latents).sample
        b = with_vae.pipe.vae.decode(latents).sample
    assert not torch.allclose(a, b)
    for name, tensor in with_vae.pipe.vae.state_dict().items():
        assert torch.equal(tensor, state[name])


def test_a_vae_that_does_not_fit_keeps_the_checkpoint_vae(two_checkpoints, tmp_path):
    bad = tmp_path / "bad.vae.safetensors"
    save_file({"nonsense.weight": torch.zeros(3)}, str(bad))
    manager = PipelineManager(cpu_policy, vae_for=lambda c: bad)
    loaded = manager.load(two_checkpoints[0])
    assert "bad.vae.safetensors" in manager.vae_warning
    out = loaded.pipe(prompt_embeds=torch.zeros(1, 77, 32), negative_prompt_embeds=torch.zeros(1, 77, 32),
                      num_inference_steps=1, height=64, width=64, output_type="np").images
    assert np.isfinite(out).all()


# ---- live pipelines while loading, the RAM cache's placement, failed loads (fake loader) ----------

class FakePipe:
    """What the manager and apply_memory_policy touch of a diffusers pipeline, and where it was put."""

    text_encoder_2 = None
    vae = None
    unet = None

    def __init__(self, path: Path):
        self.path = path
        self.device = "cpu"
        self.hooks_released = 0

    def to(self, device=None, dtype=None):
        if device is not None:
            self.device = str(device)
        return self

    def set_progress_bar_config(self, **kwargs):
        pass

    def maybe_free_model_hooks(self):
        self.hooks_released += 1


class CountingLoader:
    """Makes FakePipes; at each load records how many pipelines it made are still alive (after gc)."""

    def __init__(self, bad: tuple[str, ...] = (), pipe_class: type = FakePipe):
        self.pipe_class = pipe_class
        self.made: list[weakref.ref] = []
        self.live_at_load: list[int] = []
        self.loads: list[str] = []
        self.bad = set(bad)

    def live(self) -> list[FakePipe]:
        gc.collect()
        return [pipe for ref in self.made if (pipe := ref()) is not None]

    def __call__(self, path, config_dir=None, dtype=None):
        self.live_at_load.append(len(self.live()))
        self.loads.append(Path(path).stem)
        pipe = self.pipe_class(Path(path))
        self.made.append(weakref.ref(pipe))
        if Path(path).stem in self.bad:
            # A loader failing halfway: its frame (in the traceback) still holds the half-built pipeline.
            raise CheckpointError(f"{Path(path).name}: could not be loaded (half-built {pipe.path.name})")
        return pipe, None


def fake_checkpoint(name: str) -> CheckpointInfo:
    path = Path(f"/models/{name}.safetensors")
    return CheckpointInfo(path, path.name, name)


GPU = MemoryPolicy(device="cuda:0", dtype="float16", vae_dtype="float16")


def gpu_policy(family):
    return GPU


A, B, C = (fake_checkpoint(n) for n in ("model-a", "model-b", "model-c"))


def test_a_switch_frees_the_old_pipeline_before_loading_the_new_one():
    loader = CountingLoader()
    manager = PipelineManager(gpu_policy, loader=loader)
    for checkpoint in (A, B, C, A):
        manager.load(checkpoint)
    assert loader.live_at_load == [0, 0, 0, 0]  # never two models in memory at once
    assert [p.path.stem for p in loader.live()] == ["model-a"]


def test_cached_models_wait_on_the_cpu_and_come_back_to_the_policy_device():
    loader = CountingLoader()
    manager = PipelineManager(gpu_policy, cache_size=2, loader=loader)
    first = manager.load(A)
    assert first.pipe.device == "cuda:0"
    manager.load(B)
    assert first.pipe.device == "cpu"  # the setting says RAM: cached, it leaves the GPU
    manager.load(C)
    assert {p.path.stem: p.device for p in loader.live()} == {"model-a": "cpu", "model-b": "cpu",
                                                               "model-c": "cuda:0"}
    again = manager.load(A)
    assert again is first and again.pipe.device == "cuda:0"
    assert loader.loads == ["model-a", "model-b", "model-c"]  # taken back from the cache, not from disk


def test_offloaded_models_release_their_hooks_when_cached():
    offload = MemoryPolicy(device="cuda:0", offload="model")

    class OffloadPipe(FakePipe):
        def enable_model_cpu_offload(self, device=None):
            self.device = "cpu"  # the hooks move each part to the GPU only while it runs

    manager = PipelineManager(lambda family: offload, cache_size=1,
                              loader=CountingLoader(pipe_class=OffloadPipe))
    first = manager.load(A)
    manager.load(B)
    assert first.pipe.hooks_released == 1 and first.pipe.device == "cpu"


def test_a_failed_load_keeps_the_previous_model_reloaded_from_disk():
    loader = CountingLoader(bad=("model-b",))
    manager = PipelineManager(gpu_policy, loader=loader)
    manager.load(A)
    with pytest.raises(CheckpointError, match="model-b.safetensors"):
        manager.load(B)
    current = manager.current
    assert current is not None and current.checkpoint.path == A.path and current.pipe.device == "cuda:0"
    assert loader.loads == ["model-a", "model-b", "model-a"]
    # Neither the freed model nor the failed one's half-built pipeline was alive while the next loaded.
    assert loader.live_at_load == [0, 0, 0]
    assert [p.path.stem for p in loader.live()] == ["model-a"]


def test_a_failed_load_takes_the_previous_model_back_from_the_cache():
    loader = CountingLoader(bad=("model-b",))
    manager = PipelineManager(gpu_policy, cache_size=1, loader=loader)
    first = manager.load(A)
    with pytest.raises(CheckpointError):
        manager.load(B)
    assert manager.current is first and first.pipe.device == "cuda:0"
    assert loader.loads == ["model-a", "model-b"]  # no second read of model-a


def test_when_the_previous_model_cannot_come_back_either_nothing_is_loaded_and_the_first_error_is_raised():
    loader = CountingLoader(bad=("model-b",))
    manager = PipelineManager(gpu_policy, loader=loader)
    manager.load(A)
    loader.bad.add("model-a")  # e.g. its file was deleted meanwhile
    with pytest.raises(CheckpointError, match="model-b.safetensors"):
        manager.load(B)
    assert manager.current is None


def test_a_broken_file_is_refused_before_the_current_model_is_touched(two_checkpoints, tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    manager = PipelineManager(cpu_policy)
    loaded = manager.load(two_checkpoints[0])
    with pytest.raises(CheckpointError, match="broken.safetensors"):
        manager.load(CheckpointInfo(bad, bad.name, bad.stem))
    assert manager.current is loaded  # the header check failed first: nothing was freed or reloaded


def test_after_failure_releases_offload_hooks_of_every_pipeline():
    loader = CountingLoader()
    manager = PipelineManager(gpu_policy, loader=loader)
    loaded = manager.load(A)
    manager.after_failure()
    assert loaded.pipe.hooks_released == 1


def test_an_unloaded_checkpoint_is_loaded_again_on_request_and_only_that_one(two_checkpoints):
    manager = PipelineManager(cpu_policy)
    assert manager.load_unloaded() is None  # nothing was ever unloaded: nothing to bring back
    first = manager.load(two_checkpoints[1])
    unet = weakref.ref(first.pipe.unet)
    del first
    manager.unload()
    gc.collect()
    assert manager.current is None and unet() is None  # unload really frees it
    again = manager.load_unloaded()
    assert again is manager.current and again.checkpoint.path == two_checkpoints[1].path
    assert manager.load_unloaded() is again  # loaded already: the same model, no second load
    manager.unload()
    manager.load(two_checkpoints[0])  # another model loaded since: the old unload is forgotten
    manager.unload()
    assert manager.load_unloaded().checkpoint.path == two_checkpoints[0].path
