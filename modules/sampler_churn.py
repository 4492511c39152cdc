"""A1111's sigma churn (s_churn, s_tmin, s_tmax, s_noise) for Heun and DPM2, as k-diffusion's sample_heun and
sample_dpm_2 do it (Karras et al. 2022, algorithm 2): a step whose sigma lies in [s_tmin, s_tmax] first raises
the noise to sigma_hat = sigma * (1 + gamma), gamma = min(s_churn / steps, sqrt(2) - 1), by adding
noise * s_noise * sqrt(sigma_hat^2 - sigma^2), then runs from sigma_hat: the model is called at sigma_hat.

diffusers' Heun and DPM2 take no churn (their step fixes gamma at 0) and are second-order: each step is two
step() calls, with the first call's sigma and timestep read from per-call tables set in set_timesteps. So:
- set_timesteps puts sigma_hat (and its model timestep; DPM2 also the midpoint that follows from it) into
  the tables for the first call of each churned step;
- the noise that raises step k's sigma is added to what step k-1's last call returns (the pipeline then
  calls the model at sigma_hat on it); it is drawn with the generator the pipeline passes to step, through
  our noise routing, so it comes from the job's RNG like any step noise;
- the first step has no step before it: it starts at sigma_hat (the start noise is scaled by it, and
  img2img's add_noise reads the same table). That has the law of the churned start for s_noise 1; a
  different s_noise does not scale that first raise.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from functools import wraps

import numpy as np
from diffusers import HeunDiscreteScheduler, KDPM2DiscreteScheduler

from modules.rng.diffusers_noise import randn_routed

CHURN_CLASSES = (HeunDiscreteScheduler, KDPM2DiscreteScheduler)
# The instance attribute holding {call index: std of the noise to add after it} for the current schedule.
_EXTRA_NOISE_ATTR = "_webui_churn_noise"


def apply_sigma_churn(scheduler, values: Mapping[str, float]) -> bool:
    """Make a Heun or DPM2 `scheduler` apply `values` (s_churn, s_tmin, s_tmax, s_noise); False for others."""
    if not isinstance(scheduler, CHURN_CLASSES):
        return False
    set_timesteps, step = scheduler.set_timesteps, scheduler.step

    @wraps(set_timesteps)
    def timesteps_with_churn(*args, **kwargs):
        set_timesteps(*args, **kwargs)
        setattr(scheduler, _EXTRA_NOISE_ATTR, _churn_schedule(scheduler, values))

    # wraps() + a `generator` parameter: pipelines read step's signature to decide whether to pass it.
    @wraps(step)
    def churned_step(model_output, timestep, sample, *args, generator=None, **kwargs):
        out = step(model_output, timestep, sample, *args, **kwargs)
        std = getattr(scheduler, _EXTRA_NOISE_ATTR, {}).get(scheduler.step_index)
        if not std or not scheduler.state_in_first_order:
            return out
        return_dict = kwargs.get("return_dict", True)
        prev = out.prev_sample if return_dict else out[0]
        noise = randn_routed(prev.shape, generator=generator, device=prev.device, dtype=prev.dtype)
        new = prev + noise * std
        if return_dict:
            out.prev_sample = new
            return out
        return (new, *out[1:])

    signature = inspect.signature(step)
    generator = inspect.Parameter("generator", inspect.Parameter.KEYWORD_ONLY, default=None)
    churned_step.__signature__ = signature.replace(parameters=[*signature.parameters.values(), generator])
    scheduler.set_timesteps = timesteps_with_churn
    scheduler.step = churned_step
    return True


def _churn_schedule(s, values: Mapping[str, float]) -> dict[int, float]:
    """Writes sigma_hat into the scheduler's per-call tables; returns {call index: extra noise std} for the
    steps after the first (the index is that step's first call, which the previous step's last call leaves)."""
    steps = int(s.num_inference_steps)
    s_churn, s_tmin, s_tmax, s_noise = (float(values[k]) for k in ("s_churn", "s_tmin", "s_tmax", "s_noise"))
    log_sigmas = np.log(np.array(((1 - s.alphas_cumprod) / s.alphas_cumprod) ** 0.5))  # as set_timesteps
    extra: dict[int, float] = {}
    for k in range(steps):
        first = 2 * k  # both classes: step k's first call; its sigma is sigmas[2k], its timestep timesteps[2k]
        sigma = float(s.sigmas[first])
        gamma = min(s_churn / steps, 2 ** 0.5 - 1) if s_tmin <= sigma <= s_tmax else 0.0
        if gamma <= 0 or sigma <= 0:
            continue
        sigma_hat = sigma * (gamma + 1)
        s.sigmas[first] = sigma_hat
        s.timesteps[first] = _model_timestep(s, sigma_hat, log_sigmas)
        if isinstance(s, KDPM2DiscreteScheduler):
            # DPM2's second call runs at the log-midpoint of sigma_hat and the next sigma.
            following = float(s.sigmas[first + 1])
            if following > 0 and first + 1 < len(s.timesteps):
                mid = math.sqrt(sigma_hat * following)
                s.sigmas_interpol[first + 1] = mid
                s.timesteps[first + 1] = _model_timestep(s, mid, log_sigmas)
        if k > 0:
            extra[first] = s_noise * math.sqrt(sigma_hat ** 2 - sigma ** 2)
    return extra


def _model_timestep(s, sigma: float, log_sigmas: np.ndarray) -> float:
    """The training timestep of `sigma` as the class converts it (clamped to the trained range)."""
    return float(s._sigma_to_t(np.array(sigma), log_sigmas))
