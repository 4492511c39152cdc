"""CFG 1, A1111's "Skip Early CFG" and "Negative Guidance minimum sigma" (NGMS), watched at the UNet.

The UNet's batch is counted at its first layer (`conv_in`), i.e. after every wrapper and pre-hook, so a
count is what really ran: 2 x images with the unconditional pass, 1 x images without it.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from modules.generation.guidance import UncondSkip, resolve_uncond_skip, timestep_sigma
from modules.generation.runtime import GenerationEnv
from modules.generation.txt2img import generate_txt2img
from modules.images.infotext import infotext_to_request_fields, parse_infotext
from modules.samplers import build_scheduler, find_sampler, model_scheduler_config
from modules.settings import DEFAULT_SPECS
from modules.types import GenerationRequest

DEFAULTS = {spec.key: spec.default for spec in DEFAULT_SPECS}
BASE = GenerationRequest(prompt="a red house", negative_prompt="blurry", width=64, height=64, steps=4,
                         sampler_name="Euler", seed=10, cfg_scale=7.0)


class Overlay:
    """Settings for one job: these values over the defaults."""

    def __init__(self, **values):
        self.values = values

    def get(self, key):
        return self.values.get(key, DEFAULTS[key])


def env(**settings) -> GenerationEnv:
    return GenerationEnv(settings=Overlay(**settings))


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def run_counting(model, request, **settings):
    """(result, batch size of every UNet evaluation) for one job."""
    rows: list[int] = []
    handle = model.pipe.unet.conv_in.register_forward_pre_hook(lambda m, args: rows.append(args[0].shape[0]))
    try:
        result = generate_txt2img(model, request, env=env(**settings))
    finally:
        handle.remove()
    return result, rows


# ---- CFG 1 -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_cfg_1_runs_the_unet_once_per_step_on_the_images_only(family, request):
    model = request.getfixturevalue(family)
    job = BASE.with_changes(batch_size=2, steps=2)
    _, with_cfg = run_counting(model, job)
    _, without = run_counting(model, job.with_changes(cfg_scale=1.0))
    assert with_cfg == [4, 4]  # [uncond, cond] x 2 images per step
    assert without == [2, 2]  # the images' own rows, nothing else


def test_cfg_1_ignores_the_negative_prompt_as_a1111(sd15):
    job = BASE.with_changes(cfg_scale=1.0, steps=2)
    with_negative = generate_txt2img(sd15, job).images[0]
    without = generate_txt2img(sd15, job.with_changes(negative_prompt="")).images[0]
    assert np.array_equal(pixels(with_negative), pixels(without))


# ---- the rules (A1111's CFGDenoiser: eval index / expected evals, sigma of the evaluation) ------------

def test_skip_early_cfg_rule_counts_evaluations_from_zero():
    skip = UncondSkip(early_fraction=0.5)
    # A1111: step / total_steps <= skip_early_cond, step 0-based: 0/4, 1/4, 2/4 skip, 3/4 does not
    assert [skip.rule_at(i, 4, sigma=1.0) for i in range(4)] == ["early", "early", "early", None]
    assert [UncondSkip(early_fraction=1.0).rule_at(i, 3, 1.0) for i in range(3)] == ["early"] * 3


def test_ngms_skips_every_other_evaluation_below_its_sigma_unless_all_steps():
    skip = UncondSkip(min_sigma=2.0)
    sigmas = [14.6, 5.0, 1.9, 1.0, 0.5]
    assert [skip.rule_at(i, 5, s) for i, s in enumerate(sigmas)] == [None, None, None, "ngms", None]
    every = UncondSkip(min_sigma=2.0, all_steps=True)
    assert [every.rule_at(i, 5, s) for i, s in enumerate(sigmas)] == [None, None, "ngms", "ngms", "ngms"]
    assert UncondSkip(min_sigma=2.0).rule_at(1, 5, None) is None  # unknown sigma: never skip


def test_the_rules_come_from_settings_and_the_request():
    assert resolve_uncond_skip(BASE, Overlay().get) is None  # both 0: today's path, nothing installed
    skip = resolve_uncond_skip(BASE, Overlay(s_min_uncond=1.5, s_min_uncond_all=True, skip_early_cond=0.2).get)
    assert (skip.min_sigma, skip.all_steps, skip.early_fraction) == (1.5, True, 0.2)
    # the request's s_min_uncond (A1111's p.s_min_uncond, API field) wins over the setting
    skip = resolve_uncond_skip(BASE.with_changes(s_min_uncond=3.0), Overlay(s_min_uncond=1.5).get)
    assert skip.min_sigma == 3.0


def test_timestep_sigma_inverts_the_models_noise_levels(sd15):
    scheduler = sd15.pipe.scheduler
    alphas = scheduler.alphas_cumprod
    for t in (999, 500, 1):
        expected = math.sqrt((1 - float(alphas[t])) / float(alphas[t]))
        assert timestep_sigma(scheduler, t) == pytest.approx(expected, rel=1e-4)
    # between two trained timesteps: geometric mean (log-sigma interpolation, as diffusers' sigma_to_t)
    between = math.sqrt(timestep_sigma(scheduler, 500) * timestep_sigma(scheduler, 501))
    assert timestep_sigma(scheduler, 500.5) == pytest.approx(between, rel=1e-4)


# ---- whole jobs --------------------------------------------------------------------------------------

def test_skip_early_cfg_runs_the_first_steps_without_the_uncond_pass(sd15):
    job = BASE.with_changes(batch_size=2)
    result, rows = run_counting(sd15, job, skip_early_cond=0.5)
    assert rows == [2, 2, 2, 4]
    assert "Skip Early CFG: 0.5" in result.infotexts[0]
    plain = generate_txt2img(sd15, job)
    assert np.abs(pixels(result.images[0]) - pixels(plain.images[0])).mean() > 1
    assert "Skip Early CFG" not in plain.infotexts[0]


def test_ngms_skips_odd_steps_below_the_sigma_and_all_steps_when_asked(sd15):
    _, rows = run_counting(sd15, BASE, s_min_uncond=100.0)  # above every sigma
    assert rows == [2, 1, 2, 1]
    scheduler = build_scheduler(model_scheduler_config(sd15.pipe.scheduler), find_sampler("Euler"))
    scheduler.set_timesteps(4)
    sigmas = [timestep_sigma(scheduler, float(t)) for t in scheduler.timesteps]
    threshold = (sigmas[1] + sigmas[2]) / 2  # evaluations 2 and 3 are below it
    _, rows = run_counting(sd15, BASE, s_min_uncond=threshold, s_min_uncond_all=True)
    assert rows == [2, 2, 1, 1]


def test_zero_settings_give_todays_image_exactly(sd15):
    job = BASE.with_changes(steps=2)
    plain = generate_txt2img(sd15, job)
    zero = generate_txt2img(sd15, job, env=env(s_min_uncond=0.0, skip_early_cond=0.0, s_min_uncond_all=True))
    assert np.array_equal(pixels(plain.images[0]), pixels(zero.images[0]))
    assert plain.infotexts[0] == zero.infotexts[0]
    assert "forward" not in sd15.pipe.unet.__dict__  # nothing left on the UNet


def test_skipping_every_step_is_cfg_1(sd15):
    # A1111: a skipped step uses the cond prediction for uncond and combines at scale 1 = the cond prediction
    skipped = generate_txt2img(sd15, BASE, env=env(skip_early_cond=1.0)).images[0]
    cfg1 = generate_txt2img(sd15, BASE.with_changes(cfg_scale=1.0)).images[0]
    assert np.abs(pixels(skipped) - pixels(cfg1)).max() <= 2
    assert "forward" not in sd15.pipe.unet.__dict__


def test_skipping_works_with_sdxl_added_conditioning(sdxl):
    job = BASE.with_changes(steps=2, batch_size=2)
    result, rows = run_counting(sdxl, job, skip_early_cond=1.0)
    assert rows == [2, 2]
    cfg1 = generate_txt2img(sdxl, job.with_changes(cfg_scale=1.0))
    for a, b in zip(result.images, cfg1.images):
        assert np.abs(pixels(a) - pixels(b)).max() <= 2


def test_skipped_steps_follow_prompt_editing(sd15):
    # The cross-attention of a skipped step sees the edited prompt, exactly as a CFG 1 job's does.
    job = BASE.with_changes(prompt="[a red house:a blue boat:0.5]", steps=4)
    attention = next(m for name, m in sd15.pipe.unet.named_modules() if name.endswith("attn2"))

    def texts(request, **settings):
        seen = []
        handle = attention.register_forward_pre_hook(
            lambda m, args, kwargs: seen.append(kwargs["encoder_hidden_states"].clone()), with_kwargs=True)
        try:
            generate_txt2img(sd15, request, env=env(**settings))
        finally:
            handle.remove()
        return seen

    skipped = texts(job, skip_early_cond=1.0)
    cfg1 = texts(job.with_changes(cfg_scale=1.0))
    assert len(skipped) == len(cfg1) == 4 and all(s.shape[0] == 1 for s in skipped)
    assert all(torch.equal(a, b) for a, b in zip(skipped, cfg1))
    assert not torch.equal(skipped[0], skipped[-1])  # the edit happened


def test_skipped_steps_with_and_combine_at_scale_1_around_the_first_sub_prompt(sd15):
    # A1111 puts the first sub-prompt's prediction where uncond was and combines at scale 1:
    # c0 + 1*(c0 - c0) + 1*(c1 - c0) = c1, so "a AND b" with every step skipped is "b" at CFG 1.
    job = BASE.with_changes(prompt="a red house AND a blue boat", steps=2)
    skipped = generate_txt2img(sd15, job, env=env(skip_early_cond=1.0)).images[0]
    second = generate_txt2img(sd15, job.with_changes(prompt="a blue boat", cfg_scale=1.0)).images[0]
    assert np.abs(pixels(skipped) - pixels(second)).max() <= 2


def test_hires_pass_applies_the_rules_to_its_own_steps(sd15):
    job = BASE.with_changes(steps=2, enable_hr=True, hr_scale=1.5, hr_upscaler="Latent",
                            denoising_strength=0.5, hr_second_pass_steps=2)
    _, rows = run_counting(sd15, job, skip_early_cond=0.5)
    # each pass counts its own evaluations from 0: 0/2, 1/2 skip in both
    assert rows == [1, 1, 1, 1]


def test_infotext_round_trip_gives_the_settings_back(sd15):
    result, rows = run_counting(sd15, BASE, skip_early_cond=0.25, s_min_uncond=100.0, s_min_uncond_all=True)
    assert rows == [1, 1, 1, 1]  # Skip Early for 0/4 and 1/4, NGMS (all steps) for the rest
    text = result.infotexts[0]
    assert "Skip Early CFG: 0.25" in text and "NGMS: 100" in text and "NGMS all steps: True" in text
    fields = infotext_to_request_fields(parse_infotext(text))
    assert fields["override_settings"]["skip_early_cond"] == 0.25
    assert fields["override_settings"]["s_min_uncond"] == 100
    assert fields["override_settings"]["s_min_uncond_all"] is True
