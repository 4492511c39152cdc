"""The hires pass runs exactly its steps (hr_second_pass_steps, or the first pass's when 0), whatever the
denoising strength: A1111's hires pass hands img2img an explicit step count, which stretches the schedule to
int(steps / strength) and runs its last `steps` (the img2img_fix_steps rule)."""
from __future__ import annotations

import pytest

from modules.generation import hires as hr
from modules.generation.txt2img import generate_txt2img
from modules.samplers import build_scheduler, model_scheduler_config, resolve_sampler
from modules.types import GenerationRequest

# Euler: one (batched CFG) UNet call per step. The tiny VAE halves the size: 32x32 first-pass latents.
BASE = GenerationRequest(prompt="a red house", width=64, height=64, steps=2, sampler_name="Euler", seed=10,
                         enable_hr=True, hr_scale=1.5, hr_upscaler="Latent")


def hires_timesteps(model, request: GenerationRequest) -> list[float]:
    """The timestep of every UNet call in the hires pass (the calls on latents larger than the first's)."""
    seen: list[tuple[int, float]] = []
    hook = model.pipe.unet.register_forward_pre_hook(
        lambda module, args: seen.append((args[0].shape[-1], float(args[1]))))
    try:
        generate_txt2img(model, request)
    finally:
        hook.remove()
    return [t for width, t in seen if width > request.width // 2]


@pytest.mark.parametrize(("hr_steps", "denoise", "runs"), [(3, 0.5, 3), (0, 0.5, 2), (3, 1.0, 3)])
def test_hires_pass_runs_exactly_the_hires_steps(sd15, hr_steps, denoise, runs):
    request = BASE.with_changes(hr_second_pass_steps=hr_steps, denoising_strength=denoise)
    assert len(hires_timesteps(sd15, request)) == runs


def test_hires_pass_runs_the_last_steps_of_a_schedule_stretched_by_the_strength(sd15):
    # 3 hires steps at 0.5: a 6-step schedule of which the last 3 run, as A1111's setup_img2img_steps
    request = BASE.with_changes(hr_second_pass_steps=3, denoising_strength=0.5)
    sampler, schedule, _ = resolve_sampler("Euler", "Automatic")
    scheduler = build_scheduler(model_scheduler_config(sd15.pipe.scheduler), sampler, schedule)
    scheduler.set_timesteps(6)
    assert hires_timesteps(sd15, request) == pytest.approx([float(t) for t in scheduler.timesteps[-3:]])


def test_plan_hires_carries_the_stretched_schedule():
    plan = hr.plan_hires(BASE.with_changes(hr_second_pass_steps=3, denoising_strength=0.5))
    assert (plan.steps, plan.num_inference_steps) == (3, 6)
    assert int(plan.num_inference_steps * plan.strength) == 3  # what diffusers' img2img runs of it
    first_steps = hr.plan_hires(BASE.with_changes(steps=5, hr_second_pass_steps=0, denoising_strength=0.7))
    assert (first_steps.steps, first_steps.num_inference_steps) == (5, 7)
    # strength 0: nothing to run, the upscale is the result
    assert hr.plan_hires(BASE.with_changes(denoising_strength=0.0)).steps == 0
