"""The UNet hook against an independent reference: diffusers' own StableDiffusionControlNetPipeline with the
same components, control image, seed and weight gives the same latents as our hook on a plain
StableDiffusionPipeline; weight 0 is the base bit for bit; leaving the hook restores the UNet; soft and
cond-only modes change the residuals as documented."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionControlNetPipeline
from PIL import Image

from tests.fixtures.controlnets import build_tiny_controlnet

KW = dict(prompt="a cat", num_inference_steps=3, height=64, width=64, output_type="latent",
          guidance_scale=7.0)


@pytest.fixture(scope="module")
def parts(tiny_sd15_pipe):
    controlnet = build_tiny_controlnet(tiny_sd15_pipe.unet, seed=5)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    return tiny_sd15_pipe, controlnet, image


def ours(cn, pipe, controlnet, image, *units_kw, steps=3, cfg=True):
    units = [cn.apply.ActiveUnit(i, cn.units.ControlUnit(model="x", **kw), controlnet, image)
             for i, kw in enumerate(units_kw)]
    run = cn.apply.ControlRun(units, cn.apply.StepTracker(steps), cfg=cfg, scale_factor=pipe.vae_scale_factor)
    with cn.apply.unet_controlled(pipe.unet, run):
        latents = pipe(generator=torch.Generator().manual_seed(1), **KW).images
    return latents, run


def test_hook_matches_diffusers_controlnet_pipeline(cn, parts):
    pipe, controlnet, image = parts
    reference = StableDiffusionControlNetPipeline(**pipe.components, controlnet=controlnet)
    reference.set_progress_bar_config(disable=True)
    for weight in (0.6,):  # a weight other than 1: the scale is applied where diffusers applies it
        expected = reference(image=image, controlnet_conditioning_scale=weight,
                             generator=torch.Generator().manual_seed(1), **KW).images
        got, run = ours(cn, pipe, controlnet, image, {"weight": weight})
        assert run.calls > 0
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_weight_zero_is_the_base_bit_for_bit_and_the_hook_is_removed(cn, parts):
    pipe, controlnet, image = parts
    base = pipe(generator=torch.Generator().manual_seed(1), **KW).images
    zero, _ = ours(cn, pipe, controlnet, image, {"weight": 0.0})
    assert torch.equal(zero, base)
    controlled, _ = ours(cn, pipe, controlnet, image, {"weight": 1.0})
    assert not torch.equal(controlled, base)
    assert not pipe.unet._forward_pre_hooks
    assert torch.equal(pipe(generator=torch.Generator().manual_seed(1), **KW).images, base)


def test_guidance_range_follows_diffusers_keep_rule(cn):
    tracker = cn.apply.StepTracker(steps_hint=4)
    unit = cn.units.ControlUnit(guidance_start=0.25, guidance_end=0.75)
    seen = []
    for t in (999, 749, 499, 249):
        tracker.observe(t)
        seen.append(tracker.keep(unit))
        tracker.step_done(len(seen) - 1, 4)
    assert seen == [False, True, True, False]  # i/n >= 0.25 and (i+1)/n <= 0.75
    tracker.observe(600)  # the timestep went up: a new pass (hires fix) starts at its step 0
    assert tracker.pass_index == 1 and tracker.index == 0


def test_soft_and_cond_only_modes_scale_residuals_as_documented(cn, parts):
    pipe, controlnet, image = parts
    sample = torch.randn(2, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    hidden = torch.randn(2, 77, 32, generator=torch.Generator().manual_seed(1))
    t = torch.tensor(500)

    def residuals(mode):
        unit = cn.units.ControlUnit(model="x", control_mode=mode)
        run = cn.apply.ControlRun([cn.apply.ActiveUnit(0, unit, controlnet, image)], cn.apply.StepTracker(1),
                                  cfg=True, scale_factor=2)
        with torch.no_grad():
            return run.residuals(sample, t, {"encoder_hidden_states": hidden})

    (down_b, mid_b), (down_s, mid_s), (down_c, mid_c) = (residuals(m) for m in cn.units.CONTROL_MODES)
    n = len(down_b) + 1
    for i, (b, s) in enumerate(zip(down_b, down_s)):
        torch.testing.assert_close(s, b * 0.825 ** (n - 1 - i))
    torch.testing.assert_close(mid_s, mid_b)
    assert all(torch.equal(d[:1], torch.zeros_like(d[:1])) for d in down_c) and not mid_c[:1].any()
    torch.testing.assert_close(down_c[0][1:], down_s[0][1:])  # the conditional half as in soft mode


def test_sdxl_hook_matches_diffusers_sdxl_controlnet_pipeline(cn, tiny_sdxl_pipe):
    from diffusers import StableDiffusionXLControlNetPipeline

    pipe = tiny_sdxl_pipe
    controlnet = build_tiny_controlnet(pipe.unet, seed=6)
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    reference = StableDiffusionXLControlNetPipeline(
        **{k: v for k, v in pipe.components.items() if k not in ("image_encoder", "feature_extractor")},
        controlnet=controlnet)
    reference.set_progress_bar_config(disable=True)
    kw = dict(KW, num_inference_steps=2)
    expected = reference(image=image, generator=torch.Generator().manual_seed(1), **kw).images
    unit = cn.apply.ActiveUnit(0, cn.units.ControlUnit(model="x"), controlnet, image)
    run = cn.apply.ControlRun([unit], cn.apply.StepTracker(2), cfg=True, scale_factor=pipe.vae_scale_factor)
    with cn.apply.unet_controlled(pipe.unet, run):
        got = pipe(generator=torch.Generator().manual_seed(1), **kw).images
    base = pipe(generator=torch.Generator().manual_seed(1), **kw).images
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert not torch.allclose(got, base)


def test_inpainting_unet_gets_control_from_its_latent_channels_only(cn, parts):
    # A 9-channel inpainting UNet: the ControlNet sees the 4 latent channels (as diffusers' inpaint pipeline).
    from diffusers import StableDiffusionControlNetInpaintPipeline

    from tests.fixtures.tiny_models import build_tiny_inpaint_pipeline

    _, controlnet, control = parts
    pipe = build_tiny_inpaint_pipeline(seed=0)
    init = Image.fromarray(np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    kw = dict(KW, image=init, mask_image=mask, strength=1.0)
    reference = StableDiffusionControlNetInpaintPipeline(**pipe.components, controlnet=controlnet)
    reference.set_progress_bar_config(disable=True)
    # (its default conditioning scale is 0.5, not 1)
    expected = reference(control_image=control, controlnet_conditioning_scale=1.0,
                         generator=torch.Generator().manual_seed(1), **kw).images
    unit = cn.apply.ActiveUnit(0, cn.units.ControlUnit(model="x"), controlnet, control)
    run = cn.apply.ControlRun([unit], cn.apply.StepTracker(3), cfg=True, scale_factor=pipe.vae_scale_factor)
    with cn.apply.unet_controlled(pipe.unet, run):
        got = pipe(generator=torch.Generator().manual_seed(1), **kw).images
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
