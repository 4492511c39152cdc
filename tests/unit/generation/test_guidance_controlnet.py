"""Skipped uncond steps under the built-in ControlNet's UNet hook: its pre-hook sees the whole CFG batch (so
"ControlNet is more important" still knows which half is uncond), the skipped step takes the cond half of its
residuals, and a job with every step skipped equals the CFG 1 job with the same control."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from PIL import Image

from modules.extensions.loader import import_extension_package, package_name
from modules.generation.guidance import UncondSkip, UncondSkipPatch
from modules.paths import BUILTIN_EXTENSIONS_DIR
from tests.fixtures.controlnets import build_tiny_controlnet

KW = dict(prompt="a cat", negative_prompt="blurry", num_inference_steps=3, height=64, width=64,
          output_type="latent")


@pytest.fixture(scope="module")
def apply_module():
    import_extension_package("controlnet", BUILTIN_EXTENSIONS_DIR / "controlnet")
    return importlib.import_module(f"{package_name('controlnet')}.apply"), \
        importlib.import_module(f"{package_name('controlnet')}.units")


@pytest.fixture(scope="module")
def parts(tiny_sd15_pipe):
    controlnet = build_tiny_controlnet(tiny_sd15_pipe.unet, seed=5)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    return tiny_sd15_pipe, controlnet, image


@pytest.mark.parametrize("mode", ["Balanced", "ControlNet is more important"])
def test_every_step_skipped_with_control_is_cfg_1_with_control(apply_module, parts, mode):
    apply, units = apply_module
    pipe, controlnet, image = parts

    def controlled(cfg: float, skip: UncondSkip | None):
        unit = units.ControlUnit(model="x", weight=1.0, control_mode=mode)
        run = apply.ControlRun([apply.ActiveUnit(0, unit, controlnet, image)], apply.StepTracker(3),
                               cfg=cfg > 1, scale_factor=pipe.vae_scale_factor)
        rows: list[int] = []
        handle = pipe.unet.conv_in.register_forward_pre_hook(lambda m, a: rows.append(a[0].shape[0]))
        try:
            with apply.unet_controlled(pipe.unet, run):  # entered for the whole job, as the extension does
                patch = UncondSkipPatch(pipe, skip) if skip is not None else None
                with patch if patch is not None else torch.no_grad():
                    latents = pipe(generator=torch.Generator().manual_seed(1), guidance_scale=cfg, **KW).images
        finally:
            handle.remove()
        return latents, rows

    skipped, rows = controlled(7.0, UncondSkip(early_fraction=1.0))
    cfg1, _ = controlled(1.0, None)
    full, full_rows = controlled(7.0, None)
    # the model's own scheduler (PLMS) evaluates once more than it has steps
    assert set(rows) == {1} and set(full_rows) == {2} and len(rows) == len(full_rows) >= 3
    torch.testing.assert_close(skipped, cfg1, rtol=0, atol=1e-4)
    assert not torch.allclose(full, cfg1, atol=1e-3)  # CFG 7 with control is another image
    assert "forward" not in pipe.unet.__dict__ and not pipe.unet._forward_pre_hooks
