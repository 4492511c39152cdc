"""Each Optimizations setting reaches the loaded pipeline (through the manager's policy): the UNet is
compiled / channels-last / bfloat16, the VAE tiles and slices; tiled decodes stay close to whole ones;
changing a setting reloads the model once."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from modules.context import family_policy, reload_for_new_policy
from modules.devices import DeviceInfo
from modules.flags import Flags
from modules.performance.compile import is_compiled
from modules.performance.vae import tile_large_images
from modules.pipelines.manager import PipelineManager
from modules.pipelines.memory import apply_memory_policy
from modules.pipelines.registry import CheckpointInfo
from modules.settings import Settings
from tests.fixtures.tiny_models import build_tiny_sd15_pipeline, tiny_vae

CHECKPOINT = CheckpointInfo(path=Path("/models/tiny.safetensors"), name="tiny.safetensors", model_name="tiny")


def manager_with(settings: Settings) -> PipelineManager:
    def policy_for(family):
        return family_policy(DeviceInfo(), Flags(), settings, family)

    def loader(path, config_dir=None, dtype=None):
        return build_tiny_sd15_pipeline(seed=0), None

    return PipelineManager(policy_for, loader=loader, precheck=lambda path: None)


def channels_last(unet) -> bool:
    return unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)


def test_defaults_leave_the_pipeline_as_today(tmp_path):
    pipe = manager_with(Settings(tmp_path / "config.json")).load(CHECKPOINT).pipe
    assert not is_compiled(pipe.unet) and not channels_last(pipe.unet) and pipe.unet.dtype == torch.float32
    assert not pipe.vae.use_tiling and not pipe.vae.use_slicing


def test_each_setting_reaches_the_loaded_pipeline(tmp_path):
    settings = Settings(tmp_path / "config.json")
    settings.update({"unet_compile": True, "opt_channelslast": "On", "sd_dtype": "bfloat16",
                     "sd_vae_tiling": "On", "sd_vae_slicing": "On"})
    loaded = manager_with(settings).load(CHECKPOINT)
    pipe = loaded.pipe
    assert is_compiled(pipe.unet)  # compiled lazily: the first UNet call builds the graph
    assert channels_last(pipe.unet) and pipe.unet.dtype == torch.bfloat16 and pipe.vae.dtype == torch.bfloat16
    assert pipe.vae.use_tiling and pipe.vae.use_slicing
    assert "torch.compile default" in loaded.policy.label and "channels-last" in loaded.policy.label


def test_a_changed_setting_reloads_the_model_once(tmp_path):
    settings = Settings(tmp_path / "config.json")
    manager = manager_with(settings)
    manager.load(CHECKPOINT)
    ctx = SimpleNamespace(pipelines=manager, policy_for=manager._policy_for)
    assert not reload_for_new_policy(ctx)  # nothing changed
    settings.update({"opt_channelslast": "On", "sd_vae_slicing": "On"})  # two keys: two queued calls
    assert reload_for_new_policy(ctx) and not reload_for_new_policy(ctx)
    assert channels_last(manager.current.pipe.unet) and manager.current.pipe.vae.use_slicing


def test_channels_last_gives_the_same_image_within_float_tolerance():
    pipe = build_tiny_sd15_pipeline(seed=0)

    def image():
        return pipe("a red house", num_inference_steps=2, width=64, height=64, output_type="np",
                    generator=torch.Generator().manual_seed(1)).images

    before = image()
    pipe.unet.to(memory_format=torch.channels_last)
    assert channels_last(pipe.unet) and np.allclose(before, image(), atol=1e-4)


def decode(side: int):
    """(VAE, latents, whole decode) of a side x side image on the tiny VAE (64 px tiles, 2x upsampling)."""
    torch.manual_seed(0)
    vae = tiny_vae().eval()
    latents = torch.randn(1, 4, side // 2, side // 2)
    with torch.no_grad():
        whole = vae.decode(latents).sample
    return vae, latents, whole


# 512x512 on the tiny VAE takes minutes on a busy 2-core box: the default run tiles a 128x128 image (3x3 tiles).
@pytest.mark.parametrize("side", [128, pytest.param(512, marks=pytest.mark.slow)])
def test_a_tiled_decode_is_close_to_the_whole_one(side):
    vae, latents, whole = decode(side)
    vae.enable_tiling()
    with torch.no_grad():
        tiled = vae.decode(latents).sample
    assert tiled.shape == whole.shape == (1, 3, side, side)
    assert not torch.equal(tiled, whole)  # it did tile
    # Tiles normalise (GroupNorm) over their own pixels, so a random-weights VAE differs more than a real one;
    # still the same image: strongly correlated, small error next to the pixel values.
    correlation = torch.corrcoef(torch.stack([tiled.flatten(), whole.flatten()]))[0, 1]
    assert correlation > 0.95 and (tiled - whole).abs().mean() < 0.25 * whole.abs().mean()


def test_automatic_tiling_leaves_images_up_to_1024_whole():
    vae, latents, whole = decode(128)  # the tiny VAE would tile this (its own tile size is 64)
    tile_large_images(vae, 1024)
    try:
        assert vae.use_tiling and vae.tile_sample_min_size == 1024 and vae.tile_latent_min_size == 512
        with torch.no_grad():
            assert torch.equal(vae.decode(latents).sample, whole)
    finally:
        vae.disable_tiling()


def test_a_policy_with_compile_reaches_the_unet_through_apply_memory_policy():
    from dataclasses import replace

    from modules.devices import MemoryPolicy

    pipe = SimpleNamespace(unet=torch.nn.Conv2d(4, 4, 1), to=lambda *a, **k: None)
    apply_memory_policy(pipe, replace(MemoryPolicy(), compile_mode="default"))
    assert is_compiled(pipe.unet)
