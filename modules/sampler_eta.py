"""A1111's ancestral eta (the share of fresh noise a step keeps: 1 = diffusers' own step, 0 = none, the
deterministic solver) for the diffusers schedulers behind DPM2 a, DPM++ SDE, DPM++ 2S a and the DPM++ SDE
multistep samplers. Euler a's lives in sampler_params (`_ancestral_eta_step`).

The formulas are k-diffusion's (sampling.py: get_ancestral_step, sample_dpm_2_ancestral, sample_dpmpp_sde,
sample_dpmpp_2m_sde, sample_dpmpp_3m_sde), written for diffusers' state. Each scheduler still draws its noise
where and as often as it does at eta 1 (the generator the pipeline hands its step, or its Brownian tree), so
the random stream and our noise routing (modules/rng) are unchanged; only how much of it lands differs.
Only this pass's scheduler instance changes (instance attributes), never the class.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial, wraps

import numpy as np
import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    DPMSolverSDEScheduler,
    DPMSolverSinglestepScheduler,
    KDPM2AncestralDiscreteScheduler,
)


def ancestral_step(sigma_from, sigma_to, eta: float):
    """(sigma_down, sigma_up) of one ancestral step from `sigma_from` to `sigma_to` (k-diffusion units):
    move deterministically to sigma_down, then add noise * sigma_up; eta scales sigma_up (0 = no noise)."""
    up1 = (sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2) / sigma_from ** 2) ** 0.5
    up = torch.minimum(torch.as_tensor(sigma_to), eta * torch.as_tensor(up1))
    return (sigma_to ** 2 - up ** 2) ** 0.5, up


def apply_ancestral_eta(scheduler, eta: float, s_noise: float = 1.0) -> bool:
    """Make `scheduler` (DPM2 a, DPM++ SDE, or an sde-dpmsolver++ DPM-Solver) step with `eta` and its step
    noise scaled by `s_noise` (k-diffusion's s_noise); False when its class has neither here."""
    applier = _applier(scheduler)
    if applier is None:
        return False
    applier(scheduler, eta, s_noise)
    return True


def _applier(scheduler) -> Callable | None:
    if isinstance(scheduler, KDPM2AncestralDiscreteScheduler):
        return _dpm2_ancestral
    if isinstance(scheduler, DPMSolverSDEScheduler):
        return _dpmpp_sde
    if getattr(scheduler.config, "algorithm_type", None) == "sde-dpmsolver++":
        if isinstance(scheduler, DPMSolverMultistepScheduler):
            return _sde_multistep
        if isinstance(scheduler, DPMSolverSinglestepScheduler):
            return _sde_singlestep
    return None


# ---- DPM2 a: eta moves the midpoint, so the schedule itself changes -------------------------------------


def _dpm2_ancestral(scheduler, eta: float, s_noise: float) -> None:
    """k-diffusion's DPM2 a takes its midpoint between sigma and sigma_down, and sigma_down depends on eta:
    the model's second call of each step runs at another sigma (and timestep). diffusers computes those per
    schedule in set_timesteps, and its step reads them from there; they are recomputed with eta after it."""
    set_timesteps = scheduler.set_timesteps

    @wraps(set_timesteps)
    def run(*args, **kwargs):
        set_timesteps(*args, **kwargs)
        _dpm2_ancestral_schedule(scheduler, eta, s_noise)

    scheduler.set_timesteps = run


def _dpm2_ancestral_schedule(s, eta: float, s_noise: float) -> None:
    # diffusers' layout: per-step values repeated for the step's two calls, [v0, v1, v1, ..., vn-1, vn-1, vn].
    def per_call(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return torch.cat([v[:1], v[1:].repeat_interleave(2), v[-1:]]).to(like.device)

    sigmas = torch.cat([s.sigmas[:1], s.sigmas[1:-1:2]])  # the schedule's sigmas, ending at 0
    following = torch.cat([sigmas[1:], sigmas.new_zeros(1)])
    down, up = ancestral_step(sigmas, following, eta)
    down[-1] = 0.0
    mid = sigmas.log().lerp(down.log(), 0.5).exp()  # geometric mean of sigma and sigma_down
    mid[-2:] = 0.0  # the last step is one Euler call to 0
    s.sigmas_interpol = per_call(mid, s.sigmas_interpol)
    # sigma_up only weighs the step's noise: s_noise goes there.
    s.sigmas_up, s.sigmas_down = per_call(up * s_noise, s.sigmas_up), per_call(down, s.sigmas_down)
    # Timesteps: [t0, mid t1, t1, mid t2, t2, ...]; the midpoints' are the model timesteps of the new sigmas.
    timesteps = torch.cat([s.timesteps[:1], s.timesteps[2::2]])
    log_sigmas = s.log_sigmas.cpu().numpy()
    mid_t = torch.tensor([float(s._sigma_to_t(np.array(m), log_sigmas)) for m in mid.cpu().tolist()],
                         dtype=timesteps.dtype)
    calls = torch.stack((mid_t[:-2, None].to(timesteps.device), timesteps[1:, None]), dim=-1).flatten()
    s.timesteps = torch.cat([timesteps[:1], calls])


# ---- DPM++ SDE: the step's ancestral split redone with eta ------------------------------------------------


def _dpmpp_sde(scheduler, eta: float, s_noise: float) -> None:
    """diffusers' DPM++ SDE makes each half step as k-diffusion's sample_dpmpp_sde with eta 1: exact step to
    sigma_down, then Brownian noise * sigma_up. The noise it drew is taken back out of its result and the
    move redone with eta's sigma_down/sigma_up (the tree is sampled exactly as before). Its step takes
    s_noise itself."""
    original = scheduler.step
    step = partial(original, s_noise=s_noise) if s_noise != 1.0 else original

    @wraps(original)
    def run(model_output, timestep, sample, *args, **kwargs):
        if scheduler.step_index is None:
            scheduler._init_step_index(timestep)
        index, first = scheduler.step_index, scheduler.state_in_first_order
        sigma, sigma_next = (scheduler.sigmas[index], scheduler.sigmas[index + 1]) if first else \
            (scheduler.sigmas[index - 1], scheduler.sigmas[index])
        start = sample if first else scheduler.sample  # the second half restarts from the step's start
        out = step(model_output, timestep, sample, *args, **kwargs)
        if sigma_next == 0 or eta == 1.0:  # the last step is a plain Euler step, no noise
            return out
        return_dict = kwargs.get("return_dict", True)
        prev, x0 = (out.prev_sample, out.pred_original_sample) if return_dict else (out[0], out[1])
        # First half: to the log-midpoint; second half: the whole step.
        target = (sigma * sigma_next) ** 0.5 if first else sigma_next
        down1, up1 = ancestral_step(sigma, target, 1.0)
        down, up = ancestral_step(sigma, target, eta)
        s, x0f = start.float(), x0.float()
        noise = (prev.float() - (x0f + (down1 / sigma) * (s - x0f))) / up1  # includes s_noise
        new = (x0f + (down / sigma) * (s - x0f) + noise * up).to(prev.dtype)
        if return_dict:
            out.prev_sample = new
            return out
        return (new, *out[1:])

    scheduler.step = run


# ---- DPM-Solver++ SDE (2M SDE, 2M SDE Heun, 3M SDE, and 2S a's single-step stand-in) -------------------
# diffusers' sde-dpmsolver++ updates are k-diffusion's sample_dpmpp_2m_sde/3m_sde with eta fixed at 1, in
# variance-preserving units (x_vp = x / sqrt(sigma^2 + 1); alpha_t, sigma_t from diffusers). With eta,
# h_eta = (1 + eta) h replaces diffusers' 2h in the exponential-integrator weights, the sample decays by
# exp(-eta h) besides sigma_t / sigma_s, and the noise weight is sigma_t * sqrt(1 - exp(-2 eta h)).


def _sde_first_order(scheduler, eta: float, s_noise: float):
    """The first-order step both solvers take (multistep warm-up, single-step order 1): one eta update
    from this step's sigma to the next."""
    def first(model_output, *args, sample=None, noise=None, **kwargs):
        i = scheduler.step_index
        return _sde_update(scheduler, scheduler.sigmas[i + 1], scheduler.sigmas[i], sample, model_output,
                           noise, eta, s_noise=s_noise)

    return first


def _sde_multistep(scheduler, eta: float, s_noise: float) -> None:
    def second(outputs, *args, sample=None, noise=None, **kwargs):
        i, sig = scheduler.step_index, scheduler.sigmas
        h, h_0 = _log_snr_gap(scheduler, sig[i], sig[i + 1]), _log_snr_gap(scheduler, sig[i - 1], sig[i])
        d1 = (outputs[-1] - outputs[-2]) * (h / h_0)
        # k-diffusion's 3M takes its warm-up second-order step with the exponential weight ("heun").
        heun = scheduler.config.solver_type == "heun" or scheduler.config.solver_order == 3
        return _sde_update(scheduler, sig[i + 1], sig[i], sample, outputs[-1], noise, eta,
                           s_noise=s_noise, d1=d1, heun=heun)

    def third(outputs, *args, sample=None, noise=None, **kwargs):
        i, sig = scheduler.step_index, scheduler.sigmas
        h = _log_snr_gap(scheduler, sig[i], sig[i + 1])
        r0 = _log_snr_gap(scheduler, sig[i - 1], sig[i]) / h
        r1 = _log_snr_gap(scheduler, sig[i - 2], sig[i - 1]) / h
        m0, m1, m2 = outputs[-1], outputs[-2], outputs[-3]
        d1_0, d1_1 = (m0 - m1) / r0, (m1 - m2) / r1
        d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
        d2 = (d1_0 - d1_1) / (r0 + r1)
        return _sde_update(scheduler, sig[i + 1], sig[i], sample, m0, noise, eta, s_noise=s_noise,
                           d1=d1, d2=d2, heun=True)

    scheduler.dpm_solver_first_order_update = _sde_first_order(scheduler, eta, s_noise)
    scheduler.multistep_dpm_solver_second_order_update = second
    scheduler.multistep_dpm_solver_third_order_update = third


def _sde_singlestep(scheduler, eta: float, s_noise: float) -> None:
    """The single-step solver's order-2 step goes from the pair's start s1 over the whole pair (to t), with
    its first model output there and the midpoint's as the correction."""
    def second(outputs, *args, sample=None, noise=None, **kwargs):
        i, sig = scheduler.step_index, scheduler.sigmas
        h, h_0 = _log_snr_gap(scheduler, sig[i - 1], sig[i + 1]), _log_snr_gap(scheduler, sig[i - 1], sig[i])
        d1 = (outputs[-1] - outputs[-2]) * (h / h_0)
        return _sde_update(scheduler, sig[i + 1], sig[i - 1], sample, outputs[-2], noise, eta,
                           s_noise=s_noise, d1=d1, heun=scheduler.config.solver_type == "heun")

    scheduler.dpm_solver_first_order_update = _sde_first_order(scheduler, eta, s_noise)
    scheduler.singlestep_dpm_solver_second_order_update = second


def _log_snr_gap(scheduler, sigma_from, sigma_to) -> torch.Tensor:
    """h = lambda_to - lambda_from, lambda = log(alpha / sigma) of diffusers' VP parametrisation."""
    a_to, s_to = scheduler._sigma_to_alpha_sigma_t(sigma_to)
    a_from, s_from = scheduler._sigma_to_alpha_sigma_t(sigma_from)
    return (torch.log(a_to) - torch.log(s_to)) - (torch.log(a_from) - torch.log(s_from))


def _sde_update(scheduler, sigma_to, sigma_from, sample, x0, noise, eta: float, *, s_noise: float = 1.0,
                d1=None, d2=None, heun: bool = False) -> torch.Tensor:
    """One DPM-Solver++ SDE step from `sample` at sigma_from to sigma_to with the data prediction `x0` and its
    first/second differences `d1`/`d2` (None: lower order), noise share `eta`, noise scale `s_noise`."""
    alpha_t, sigma_t = scheduler._sigma_to_alpha_sigma_t(sigma_to)
    if float(sigma_t) == 0.0:  # the final step to sigma 0: the prediction itself (k-diffusion: x = denoised)
        return alpha_t * x0
    _, sigma_s = scheduler._sigma_to_alpha_sigma_t(sigma_from)
    h = _log_snr_gap(scheduler, sigma_from, sigma_to)
    h_eta = (1.0 + eta) * h
    phi_1 = -torch.expm1(-h_eta)
    x = (sigma_t / sigma_s) * torch.exp(-eta * h) * sample + alpha_t * phi_1 * x0
    if d1 is not None:
        phi_2 = torch.expm1(-h_eta) / h_eta + 1.0
        x = x + alpha_t * (phi_2 if heun else 0.5 * phi_1) * d1
        if d2 is not None:
            x = x - alpha_t * (phi_2 / h_eta - 0.5) * d2
    if eta:
        x = x + sigma_t * torch.sqrt(-torch.expm1(-2.0 * eta * h)) * s_noise * noise
    return x

