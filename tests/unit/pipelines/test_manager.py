"""The pipeline manager: switching frees the old model, the RAM cache keeps N, the VAE choice applies."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from modules.devices import DeviceFlags, DeviceInfo, choose_policy
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


def test_ten_switches_leave_memory_flat(two_checkpoints):
    manager = PipelineManager(cpu_policy)
    manager.load(two_checkpoints[0])
    manager.load(two_checkpoints[1])
    baseline = live_tensor_bytes()
    unets = []
    for i in range(10):
        loaded = manager.load(two_checkpoints[i % 2])
        unets.append(weakref.ref(loaded.pipe.unet))
        del loaded
    gc.collect()
    alive = [ref for ref in unets if ref() is not None]
    assert len(alive) == 1 and alive[0]() is manager.current.pipe.unet  # every switched-out UNet was freed
    growth = live_tensor_bytes() - baseline
    assert abs(growth) < 1_000_000, f"tensor memory grew by {growth} bytes over 10 switches"


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
