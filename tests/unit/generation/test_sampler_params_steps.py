"""Ancestral eta and sigma churn on the diffusers schedulers behind A1111's k-diffusion samplers, step by step
(no model: a fixed noise predictor on fixed tensors). References are k-diffusion's published formulas
(crowsonkb/k-diffusion sampling.py) written out here, or diffusers' own deterministic solvers for eta 0."""
from __future__ import annotations

import copy
import functools
import inspect
import math

import numpy as np
import pytest
import torch
from diffusers import DPMSolverSinglestepScheduler

from modules.sampler_params import apply_sampler_params, resolve_sampler_params
from modules.samplers import build_scheduler, resolve_sampler
from modules.settings import DEFAULT_SPECS
from modules.types import GenerationRequest

SD_CONFIG = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "prediction_type": "epsilon", "timestep_spacing": "leading",
             "steps_offset": 1}
DEFAULTS = {s.key: s.default for s in DEFAULT_SPECS}
START = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(0))
BIAS = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(1))


def eps_model(model_input: torch.Tensor) -> torch.Tensor:
    """A fixed, smooth stand-in for the UNet's noise prediction."""
    return 0.6 * model_input + 0.3 * torch.tanh(model_input + BIAS)


def denoised(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """k-diffusion's denoiser D(x, sigma) around an eps model: the input is scaled to unit variance."""
    return x - sigma * eps_model(x / math.sqrt(sigma ** 2 + 1))


@functools.lru_cache(maxsize=None)
def built(sampler: str, schedule: str):
    # Building DPM2 / DPM2 a takes seconds on a busy machine (their __init__ converts 1000 sigmas one by one):
    # build each once and hand out copies.
    spec, sched, _ = resolve_sampler(sampler, schedule)
    return build_scheduler(SD_CONFIG, spec, sched, seed=5)


def scheduler_for(sampler: str, schedule: str = "Automatic", **settings):
    spec, sched, _ = resolve_sampler(sampler, schedule)
    scheduler = copy.copy(built(sampler, schedule))  # set_timesteps gives the copy its own state
    values = {**DEFAULTS, **settings}
    apply_sampler_params(scheduler, resolve_sampler_params(spec, sched, GenerationRequest(), values.__getitem__))
    return scheduler


def run(scheduler, steps: int, seed: int = 1, calls: int | None = None) -> torch.Tensor:
    """The pipeline's loop: start noise, then scale_model_input / model / step for each timestep."""
    scheduler.set_timesteps(steps)
    x = START * scheduler.init_noise_sigma
    generator = torch.Generator().manual_seed(seed)
    extra = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
    for t in scheduler.timesteps[:calls]:
        x = scheduler.step(eps_model(scheduler.scale_model_input(x, t)), t, x, **extra).prev_sample
    return x


def ancestral_step(sigma_from: float, sigma_to: float, eta: float) -> tuple[float, float]:
    """k-diffusion's get_ancestral_step: (sigma_down, sigma_up)."""
    up = min(sigma_to, eta * (sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2) / sigma_from ** 2) ** 0.5)
    return (sigma_to ** 2 - up ** 2) ** 0.5, up


def model_timestep(scheduler, sigma: float) -> float:
    """The (fractional) training timestep of `sigma`: log-sigma interpolated over the trained sigmas."""
    log_sigmas = np.log(((1 - scheduler.alphas_cumprod) / scheduler.alphas_cumprod).numpy() ** 0.5)
    return float(np.interp(math.log(sigma), log_sigmas, np.arange(len(log_sigmas))))


def test_dpm2_ancestral_step_with_eta_and_s_noise_matches_k_diffusion():
    eta, s_noise = 0.5, 0.7
    scheduler = scheduler_for("DPM2 a", eta_ancestral=eta, s_noise=s_noise)
    got = run(scheduler, 3, calls=2)  # the first step: a model call at sigma, one at the midpoint
    s0, s1 = float(scheduler.sigmas[0]), float(scheduler.sigmas[1])
    down, up = ancestral_step(s0, s1, eta)
    mid = math.exp((math.log(s0) + math.log(down)) / 2)
    x = START * s0
    d = (x - denoised(x, s0)) / s0
    x_2 = x + d * (mid - s0)
    d_2 = (x_2 - denoised(x_2, mid)) / mid
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    expected = x + d_2 * (down - s0) + noise * s_noise * up
    assert torch.allclose(got, expected, atol=1e-4)
    assert float(scheduler.timesteps[1]) == pytest.approx(model_timestep(scheduler, mid), abs=0.02)


def heun_step(x, sigma_hat, sigma_next):
    d = (x - denoised(x, sigma_hat)) / sigma_hat
    x_2 = x + d * (sigma_next - sigma_hat)
    d_2 = (x_2 - denoised(x_2, sigma_next)) / sigma_next
    return x + (d + d_2) / 2 * (sigma_next - sigma_hat)


def dpm2_step(x, sigma_hat, sigma_next):
    mid = math.exp((math.log(sigma_hat) + math.log(sigma_next)) / 2)
    d = (x - denoised(x, sigma_hat)) / sigma_hat
    x_2 = x + d * (mid - sigma_hat)
    d_2 = (x_2 - denoised(x_2, mid)) / mid
    return x + d_2 * (sigma_next - sigma_hat)


@pytest.mark.parametrize("sampler, reference", [("Heun", heun_step), ("DPM2", dpm2_step)])
def test_sigma_churn_steps_match_k_diffusion(sampler, reference):
    plain = scheduler_for(sampler)
    plain.set_timesteps(3)
    s0, s1, s2 = (float(plain.sigmas[i]) for i in (0, 1, 3))
    # The window holds the second step's sigma only: the first step is plain, the second churned.
    s_churn, s_noise = 1.0, 0.8
    scheduler = scheduler_for(sampler, s_churn=s_churn, s_noise=s_noise, s_tmin=math.sqrt(s1 * s2),
                              s_tmax=math.sqrt(s0 * s1))
    got = run(scheduler, 3, calls=4)
    x = reference(START * float(scheduler.init_noise_sigma), s0, s1)
    gamma = min(s_churn / 3, 2 ** 0.5 - 1)
    sigma_hat = s1 * (gamma + 1)
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)) * s_noise
    x = x + eps * (sigma_hat ** 2 - s1 ** 2) ** 0.5
    expected = reference(x, sigma_hat, s2)
    assert torch.allclose(got, expected, atol=1e-4)
    assert float(scheduler.timesteps[2]) == pytest.approx(model_timestep(scheduler, sigma_hat), abs=0.02)


def test_dpmpp_2m_sde_steps_with_eta_and_s_noise_match_k_diffusion():
    eta, s_noise = 0.4, 0.7
    scheduler = scheduler_for("DPM++ 2M SDE", eta_ancestral=eta, s_noise=s_noise)
    got = run(scheduler, 3, calls=2)  # diffusers' latents are variance-preserving: x_ve = x * sqrt(s^2 + 1)
    s0, s1, s2 = (float(scheduler.sigmas[i]) for i in range(3))
    generator = torch.Generator().manual_seed(1)
    x = START * math.sqrt(s0 ** 2 + 1)
    old, h_last = None, None
    for sigma, sigma_next in ((s0, s1), (s1, s2)):
        den = denoised(x, sigma)
        h = math.log(sigma / sigma_next)
        eta_h = eta * h
        x = sigma_next / sigma * math.exp(-eta_h) * x - math.expm1(-h - eta_h) * den
        if old is not None:
            x = x - 0.5 * math.expm1(-h - eta_h) * (h / h_last) * (den - old)
        noise = torch.randn(x.shape, generator=generator)
        x = x + noise * sigma_next * math.sqrt(-math.expm1(-2 * eta_h)) * s_noise
        old, h_last = den, h
    assert torch.allclose(got * math.sqrt(s2 ** 2 + 1), x, atol=1e-4)


def ode(scheduler, cls=None, **changes):
    """The deterministic diffusers solver on the same config (the same sigmas)."""
    return (cls or type(scheduler)).from_config(scheduler.config, **changes)


@pytest.mark.parametrize("sampler, deterministic", [
    ("DPM++ 2M SDE", lambda s: ode(s, algorithm_type="dpmsolver++")),
    ("DPM++ 2M SDE Heun", lambda s: ode(s, algorithm_type="dpmsolver++")),
    # k-diffusion's 3M takes its second (warm-up) step with the exponential-integrator ("heun") weight.
    ("DPM++ 3M SDE", lambda s: ode(s, algorithm_type="dpmsolver++", solver_type="heun")),
    ("DPM++ 2S a", lambda s: ode(s, DPMSolverSinglestepScheduler, algorithm_type="dpmsolver++")),
    ("DPM2 a", lambda s: scheduler_for("DPM2")),  # both on Karras sigmas
])
def test_eta_zero_is_the_deterministic_solver_and_eta_one_is_not(sampler, deterministic):
    zero = scheduler_for(sampler, eta_ancestral=0.0)
    steps = 6  # enough for the multistep solvers to reach their third order before the lower-order ending
    first, second = run(zero, steps, seed=1), run(zero, steps, seed=2)
    assert torch.equal(first, second)  # other per-step noise, same result: no noise lands in the sample
    assert torch.allclose(first, run(deterministic(zero), steps), atol=1e-4)
    one = scheduler_for(sampler)
    assert not torch.allclose(run(one, steps, seed=1), run(one, steps, seed=2), atol=1e-3)
    half = run(scheduler_for(sampler, eta_ancestral=0.5), steps, seed=1)
    assert not torch.allclose(half, run(one, steps, seed=1), atol=1e-3)
    assert not torch.allclose(half, first, atol=1e-3)


def test_dpmpp_sde_eta_zero_ignores_the_brownian_noise():
    def sample(eta: float, seed: int) -> torch.Tensor:
        scheduler = scheduler_for("DPM++ SDE", eta_ancestral=eta)
        scheduler.noise_sampler_seed = seed  # another Brownian tree, the same start noise
        return run(scheduler, 3)

    assert torch.allclose(sample(0.0, 1), sample(0.0, 2), atol=1e-6)
    assert not torch.allclose(sample(1.0, 1), sample(1.0, 2), atol=1e-3)
    assert not torch.allclose(sample(0.5, 1), sample(1.0, 1), atol=1e-3)


def test_dpmpp_sde_s_noise_scales_the_brownian_noise():
    def sample(s_noise: float, seed: int) -> torch.Tensor:
        scheduler = scheduler_for("DPM++ SDE", s_noise=s_noise)
        scheduler.noise_sampler_seed = seed
        return run(scheduler, 3)

    assert torch.allclose(sample(0.0, 1), sample(0.0, 2), atol=1e-6)
    assert not torch.allclose(sample(0.5, 1), sample(1.0, 1), atol=1e-3)


def test_eta_keeps_each_steps_noise_draw_from_the_pipelines_generator():
    # One draw per step from the generator the pipeline passes, whatever eta is: the random stream is unchanged.
    for eta in (1.0, 0.3, 0.0):
        scheduler = scheduler_for("DPM++ 2M SDE", eta_ancestral=eta)
        scheduler.set_timesteps(3)
        generator, reference = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
        x = START.clone()
        for t in scheduler.timesteps:
            x = scheduler.step(eps_model(x), t, x, generator=generator).prev_sample
            torch.randn(START.shape, generator=reference)
            assert torch.equal(generator.get_state(), reference.get_state()), eta


@pytest.mark.parametrize("sampler", ["Heun", "DPM2"])
def test_churned_steps_take_the_pipelines_generator(sampler):
    scheduler = scheduler_for(sampler, s_churn=1.0)
    assert "generator" in inspect.signature(scheduler.step).parameters
    assert "generator" not in inspect.signature(scheduler_for(sampler).step).parameters  # untouched when off
