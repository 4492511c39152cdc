"""Few-step models' recipes (LCM, SD-Turbo / SDXL-Turbo, Lightning, Hyper-SD) by the names A1111/Forge users
pick: the sampler/schedule rows exist, 1- and 2-step schedules start at the top of the noise range (a 1-step
job that starts at sigma 0.03 returns noise), and whole 1- and 2-step jobs run to finite images."""
from __future__ import annotations

import json

import numpy as np
import pytest

from modules.paths import CONFIGS_DIR
from modules.samplers import (
    SAMPLERS,
    build_scheduler,
    find_schedule,
    resolve_sampler,
    schedule_supported,
)

# docs/fast_paths.md's table: (sampler, schedule) pairs it recommends.
RECIPES = [("LCM", "Automatic"), ("LCM", "SGM Uniform"), ("Euler a", "SGM Uniform"), ("Euler", "SGM Uniform"),
           ("DPM++ 2M", "SGM Uniform"), ("DPM++ SDE", "Karras"), ("DPM++ SDE", "SGM Uniform"),
           ("Euler", "Karras"), ("DPM++ 2M", "Karras"), ("TCD", "Automatic")]
# Schedules that take the sigma range from "linspace" timesteps (Uniform, Normal, the sigma formulas):
# np.linspace(0, 999, 1) is [0], so a 1-step schedule used to start (and end) at the smallest sigma.
ONE_STEP_SCHEDULES = ["Uniform", "Normal", "Karras", "Exponential", "Beta", "SGM Uniform"]


def scheduler_config(arch: str) -> dict:
    return json.loads((CONFIGS_DIR / arch / "scheduler" / "scheduler_config.json").read_text())


def top_timestep(arch: str, sampler_name: str, schedule_name: str, steps: int) -> float:
    sampler, schedule, _ = resolve_sampler(sampler_name, schedule_name)
    built = build_scheduler(scheduler_config(arch), sampler, schedule, seed=0, steps=steps)
    built.set_timesteps(steps)
    return float(built.timesteps[0])


@pytest.mark.parametrize("sampler_name, schedule_name", RECIPES)
def test_the_recipes_names_resolve_without_fallback(sampler_name, schedule_name):
    sampler, schedule, warnings = resolve_sampler(sampler_name, schedule_name)
    assert (sampler.name, schedule.name) == (sampler_name, schedule_name)
    assert not any("not used" in w or "not found" in w for w in warnings)


def one_sampler_per_class(schedule_name: str) -> list[str]:
    """A sampler per diffusers class that can apply the schedule (DPM2 rows cost seconds to build: one)."""
    seen, names = set(), []
    schedule = find_schedule(schedule_name)
    for sampler in SAMPLERS:
        family = "KDPM2" if sampler.scheduler.startswith("KDPM2") else sampler.scheduler
        if family not in seen and schedule_supported(sampler, schedule):
            seen.add(family)
            names.append(sampler.name)
    return names


@pytest.mark.parametrize("schedule_name", ONE_STEP_SCHEDULES)
def test_one_step_schedules_start_at_the_top_of_the_noise_range(schedule_name):
    for name in one_sampler_per_class(schedule_name):
        assert top_timestep("sd15", name, schedule_name, 1) > 900, name
    # SDXL's config (leading, steps_offset 1) and two steps: once, on the common sigma-formula path
    assert top_timestep("sdxl-base", "Euler", schedule_name, 1) > 900
    assert top_timestep("sd15", "Euler", schedule_name, 2) > 900


def test_many_steps_keep_their_schedule():
    # The 1-step rule changes nothing else: 10 Karras steps still span the trained range from 999 as before.
    sampler, schedule, _ = resolve_sampler("Euler", "Karras")
    config = scheduler_config("sd15")
    built = build_scheduler(config, sampler, schedule, seed=0, steps=10)
    unhinted = build_scheduler(config, sampler, schedule, seed=0)
    built.set_timesteps(10)
    unhinted.set_timesteps(10)
    assert built.config.timestep_spacing == "linspace"
    np.testing.assert_array_equal(built.sigmas.numpy(), unhinted.sigmas.numpy())


def test_automatic_at_few_steps_on_a_leading_model_warns_and_names_sgm_uniform():
    from modules.samplers import few_step_warning

    warning = few_step_warning(scheduler_config("sd15"), *resolve_sampler("Euler a")[:2], steps=1)
    assert warning and "SGM Uniform" in warning and "1 step" in warning
    assert few_step_warning(scheduler_config("sd15"), *resolve_sampler("Euler a", "SGM Uniform")[:2],
                            steps=1) is None
    assert few_step_warning(scheduler_config("sd15"), *resolve_sampler("Euler a")[:2], steps=20) is None
    # LCM picks its own timesteps (999 at 1 step): nothing to warn about
    assert few_step_warning(scheduler_config("sd15"), *resolve_sampler("LCM")[:2], steps=1) is None


JOBS = [(sampler, schedule, 1) for sampler, schedule in RECIPES] + [
    ("LCM", "Automatic", 2), ("Euler a", "SGM Uniform", 2), ("DPM++ SDE", "Karras", 2), ("TCD", "Automatic", 2)]


@pytest.mark.parametrize("sampler_name, schedule_name, steps", JOBS)
def test_one_and_two_step_jobs_make_finite_images(sd15_model, sampler_name, schedule_name, steps):
    from modules.generation.txt2img import generate_txt2img
    from modules.types import GenerationRequest

    request = GenerationRequest(prompt="a cat", width=64, height=64, steps=steps, cfg_scale=1.0, seed=3,
                                sampler_name=sampler_name, scheduler=schedule_name)
    timesteps: list[float] = []
    handle = sd15_model.pipe.unet.register_forward_pre_hook(
        lambda m, args, kwargs: timesteps.append(float((args[1] if len(args) > 1 else kwargs["timestep"])
                                                       .flatten()[0])), with_kwargs=True)
    try:
        result = generate_txt2img(sd15_model, request)
    finally:
        handle.remove()
    assert timesteps[0] > 900  # the job starts from (nearly) pure noise, as A1111's do
    image = np.asarray(result.images[0], dtype=np.float32)
    assert image.shape == (64, 64, 3) and np.isfinite(image).all() and image.std() > 1
    assert f"Steps: {steps}" in result.infotexts[0]
    assert not any("starts" in w for w in result.warnings)  # the recipes start at the top


def test_a_one_step_job_on_automatic_says_what_to_pick(sd15_model):
    from modules.generation.txt2img import generate_txt2img
    from modules.types import GenerationRequest

    request = GenerationRequest(prompt="a cat", width=64, height=64, steps=1, cfg_scale=1.0, seed=3,
                                sampler_name="Euler a")
    assert any("SGM Uniform" in w for w in generate_txt2img(sd15_model, request).warnings)


@pytest.fixture(scope="module")
def sd15_model(tiny_sd15_pipe):
    from tests.unit.generation.conftest import loaded

    return loaded(tiny_sd15_pipe, "tiny-sd15", "sd15")
