"""The x0 prediction an interrupted pass hands back, for every sampler row, checked on a perfect model:
when the model output is exactly the noise that was added, the prediction must be the clean latent."""
from __future__ import annotations

import inspect
import json

import pytest
import torch

from modules.generation.denoised import denoised_trace, stopped_early
from modules.paths import CONFIGS_DIR
from modules.samplers import SAMPLERS, build_scheduler, resolve_sampler

pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")


def config(arch: str = "sd15") -> dict:
    return json.loads((CONFIGS_DIR / arch / "scheduler" / "scheduler_config.json").read_text())


@pytest.mark.parametrize("name", [s.name for s in SAMPLERS])
@pytest.mark.parametrize("arch", ["sd15", "sd2-v"])
def test_each_sampler_predicts_the_clean_latent_from_a_perfect_model(name, arch):
    scheduler = build_scheduler(config(arch), *resolve_sampler(name)[:2], seed=0)
    scheduler.set_timesteps(6)
    t = scheduler.timesteps[0]
    gen = torch.Generator().manual_seed(0)
    clean, noise = torch.randn(1, 4, 8, 8, generator=gen), torch.randn(1, 4, 8, 8, generator=gen)
    # noise level of the first step: the schedule's own sigma where it keeps one, else the DDPM alpha
    if hasattr(scheduler, "sigmas"):
        a = 1 / (1 + scheduler.sigmas[0].double() ** 2)
    else:
        a = scheduler.alphas_cumprod[int(t)].double()
    alpha, s = a.sqrt().float(), (1 - a).sqrt().float()
    if scheduler.init_noise_sigma > 1:  # k-diffusion style latents: x = x0 + sigma * eps
        sample = clean + (s / alpha) * noise
    else:  # DDPM latents: x = sqrt(a) x0 + sqrt(1 - a) eps
        sample = alpha * clean + s * noise
    # the perfect answer in the model's own parameterisation
    output = noise if arch == "sd15" else alpha * noise - s * clean
    kwargs = {"generator": gen} if "generator" in inspect.signature(scheduler.step).parameters else {}
    with denoised_trace(scheduler) as trace:
        scheduler.step(output, t, sample, return_dict=False, **kwargs)
    assert "step" not in scheduler.__dict__  # the wrapper is gone
    assert trace.steps == 1 and trace.latest is not None
    # LCM mixes a little of the sample back in (its boundary condition c_skip) at the first timestep
    tolerance = 5e-3 if name == "LCM" else 1e-3
    torch.testing.assert_close(trace.latest.float(), clean, atol=tolerance, rtol=tolerance)


def test_wrapping_keeps_the_signature_pipelines_inspect():
    scheduler = build_scheduler(config(), *resolve_sampler("Euler a")[:2])
    with denoised_trace(scheduler):
        assert "generator" in inspect.signature(scheduler.step).parameters


def test_stopped_early_only_when_steps_were_skipped():
    from types import SimpleNamespace

    from modules.generation.denoised import DenoisedTrace

    assert not stopped_early(SimpleNamespace(_interrupt=False, _num_timesteps=4), DenoisedTrace(steps=2))
    assert stopped_early(SimpleNamespace(_interrupt=True, _num_timesteps=4), DenoisedTrace(steps=2))
    assert not stopped_early(SimpleNamespace(_interrupt=True, _num_timesteps=4), DenoisedTrace(steps=4))
