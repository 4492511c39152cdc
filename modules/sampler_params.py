"""A1111's sampler parameters (eta, sigma churn/tmin/tmax/noise, schedule sigmas and rho, img2img noise) for
one job: which values apply to the chosen sampler and schedule, what they do to a diffusers scheduler, and
which infotext keys they write.

A1111's rules, followed here: a request value (API `eta`, `s_churn`, ...) wins over the setting of the same
name; a parameter reaches only the samplers that take it (s_* only Euler, Heun and DPM2, s_noise also the
ancestral/SDE samplers bar Euler a; eta only DDIM and the ancestral/SDE samplers; sigma min/max only schedules computed from a sigma formula; rho only Karras and
Polyexponential); infotext carries a value only where it applies and differs from its default. Where
diffusers' scheduler takes no such value, the step is redone here with k-diffusion's formula (sampler_eta,
sampler_churn). The stand-in samplers (DPM fast, DPM adaptive, Restart) take no eta: there the value is
ignored with a warning, never half-applied and never written to infotext.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial, wraps
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from diffusers import EulerAncestralDiscreteScheduler

from modules.sampler_churn import apply_sigma_churn
from modules.sampler_eta import apply_ancestral_eta
from modules.samplers import SamplerSpec, ScheduleSpec

# A1111 samplers whose k-diffusion function takes s_churn/s_tmin/s_tmax/s_noise (sample_euler/heun/dpm_2).
CHURN_SAMPLERS = ("Euler", "Heun", "DPM2")
# ...of those, the ones whose diffusers scheduler.step takes them (the others get sampler_churn's step).
CHURN_STEP_KWARGS = ("Euler",)
# A1111 samplers with an eta: the timestep samplers read eta_ddim, the k-diffusion ones eta_ancestral.
DDIM_ETA_SAMPLERS = ("DDIM", "DDIM CFG++")
ANCESTRAL_ETA_SAMPLERS = ("Euler a", "DPM2 a", "DPM++ 2S a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun",
                          "DPM++ 3M SDE", "DPM fast", "DPM adaptive", "Restart")
# ...of those, the ones that apply it (the rest are stand-ins for A1111's sampler: see samplers.py's notes).
ANCESTRAL_ETA_APPLIED = ("Euler a", "DPM2 a", "DPM++ 2S a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun",
                         "DPM++ 3M SDE")
# A1111 samplers that take s_noise alone (no churn): it scales their step noise. Euler a is not one in A1111.
NOISE_SAMPLERS = ("DPM2 a", "DPM++ 2S a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 3M SDE",
                  "DPM fast")
NOISE_APPLIED = NOISE_SAMPLERS[:-1]  # DPM fast is a deterministic stand-in here
# Schedules that come from a sigma formula (the ones A1111's sigma min/max reach), by config key.
_SIGMA_FORMULA_KEYS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")
_CHURN_DEFAULTS = {"s_churn": 0.0, "s_tmin": 0.0, "s_tmax": math.inf, "s_noise": 1.0}
_CHURN_LABELS = {"s_churn": "Sigma churn", "s_tmin": "Sigma tmin", "s_tmax": "Sigma tmax",
                 "s_noise": "Sigma noise"}


def _frozen(d: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class SamplerParams:
    """What one pass applies besides the sampler's own options. Sigmas in the model's k-diffusion units."""

    step_kwargs: Mapping[str, Any] = field(default_factory=_frozen)  # extra scheduler.step() arguments
    churn: Mapping[str, float] = field(default_factory=_frozen)  # Heun/DPM2: s_churn, s_tmin, s_tmax, s_noise
    eta: float = 0.0  # the pipeline's `eta` (DDIM reads it; other schedulers ignore it)
    ancestral_eta: float = 1.0  # the ancestral/SDE samplers' noise share (1 = diffusers' own step)
    ancestral_noise: float = 1.0  # their s_noise: scales the noise their steps add
    sigma_min: float | None = None  # replaces the model's smallest sigma in a sigma-formula schedule
    sigma_max: float | None = None
    rho: float | None = None  # Karras / Polyexponential exponent; None = the schedule's default
    schedule_key: str = "automatic"
    noise_multiplier: float = 1.0  # img2img: scales the start noise (A1111 initial_noise_multiplier)
    extra_noise: float = 0.0  # img2img and hires: more of the same noise on top (A1111 img2img_extra_noise)
    infotext: Mapping[str, Any] = field(default_factory=_frozen)
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "step_kwargs", _frozen(self.step_kwargs))
        object.__setattr__(self, "churn", _frozen(self.churn))
        object.__setattr__(self, "infotext", _frozen(self.infotext))


def model_sigma_range(scheduler) -> tuple[float, float] | None:
    """(smallest, largest) trained sigma of a model's scheduler (A1111's model_wrap.sigmas); None: unknown."""
    alphas = getattr(scheduler, "alphas_cumprod", None)
    if alphas is None:
        return None
    sigmas = ((1 - alphas) / alphas) ** 0.5
    return float(sigmas[0]), float(sigmas[-1])


def resolve_sampler_params(sampler: SamplerSpec, schedule: ScheduleSpec, request,
                           setting: Callable[[str], Any], *, model_sigmas: tuple[float, float] | None = None,
                           kind: str = "txt2img") -> SamplerParams:
    """The parameters that apply to `sampler` with the resolved `schedule`; `setting(key)` reads the job's
    settings, `request` is a GenerationRequest (its eta/s_* win over the settings), `model_sigmas` the model's
    (min, max) sigma (None: sigma min/max are taken as given), `kind` the pass: "txt2img", "img2img" (noise
    multiplier and extra noise) or "hires" (extra noise only, as A1111's hires pass)."""
    infotext: dict[str, Any] = {}
    warnings: list[str] = []
    out: dict[str, Any] = {"schedule_key": schedule.key}

    # 1. Eta: DDIM's (default 0) or the ancestral samplers' (default 1), request first.
    if sampler.name in DDIM_ETA_SAMPLERS:
        eta = _value(request.eta, setting("eta_ddim"))
        out["eta"] = eta
        if eta != 0.0:
            infotext["Eta DDIM"] = eta
    elif sampler.name in ANCESTRAL_ETA_SAMPLERS:
        eta = _value(request.eta, setting("eta_ancestral"))
        if eta != 1.0 and sampler.name in ANCESTRAL_ETA_APPLIED:
            out["ancestral_eta"] = eta
            infotext["Eta"] = eta
        elif eta != 1.0:
            warnings.append(f"Eta {eta:g} is not applied: {sampler.name} runs on a stand-in solver here "
                            "that takes no eta")

    # 2. Sigma churn and its window (Euler, Heun, DPM2 in A1111).
    if sampler.name in CHURN_SAMPLERS:
        values = {name: _value(getattr(request, name, None), setting(name)) for name in _CHURN_DEFAULTS}
        values["s_tmax"] = values["s_tmax"] or math.inf  # A1111: 0 means no upper bound
        changed = {k: v for k, v in values.items() if v != _CHURN_DEFAULTS[k]}
        if changed:
            out["step_kwargs" if sampler.name in CHURN_STEP_KWARGS else "churn"] = values
            infotext.update({_CHURN_LABELS[k]: v for k, v in changed.items()})

    # 2b. s_noise alone, for the ancestral/SDE samplers.
    if sampler.name in NOISE_SAMPLERS:
        s_noise = _value(request.s_noise, setting("s_noise"))
        if s_noise != 1.0 and sampler.name in NOISE_APPLIED:
            out["ancestral_noise"] = s_noise
            infotext["Sigma noise"] = s_noise
        elif s_noise != 1.0:
            warnings.append(f"Sigma noise {s_noise:g} is not applied: {sampler.name} runs on a stand-in solver "
                            "here that adds no noise")

    # 3. Schedule sigmas and rho, for schedules computed from a formula.
    if any(schedule.options.get(k) for k in _SIGMA_FORMULA_KEYS):
        low, high = model_sigmas or (None, None)
        for key, label, model_value in (("sigma_min", "Schedule min sigma", low),
                                        ("sigma_max", "Schedule max sigma", high)):
            value = float(setting(key))
            if value != 0.0 and (model_value is None or not math.isclose(value, model_value, rel_tol=1e-6)):
                out[key] = value
                infotext[label] = value
        rho = float(setting("rho"))
        if schedule.default_rho != -1.0 and rho != 0.0 and rho != schedule.default_rho:
            out["rho"] = rho
            infotext["Schedule rho"] = rho

    # 4. img2img noise: the start noise scaled, then extra noise added (hires fix takes the extra noise too).
    if kind == "img2img":
        multiplier = _value(request.initial_noise_multiplier, setting("initial_noise_multiplier"))
        out["noise_multiplier"] = multiplier  # infotext: build_generation_params writes "Noise multiplier"
    extra = float(setting("img2img_extra_noise"))
    if extra > 0 and kind in ("img2img", "hires"):
        out["extra_noise"] = extra
        infotext["Extra noise"] = extra
    return SamplerParams(**out, infotext=infotext, warnings=tuple(warnings))


def _value(given: Any, default: Any) -> float:
    return float(default if given is None else given)


# ---- applying the parameters to a built scheduler ----------


def apply_sampler_params(scheduler, params: SamplerParams | None) -> None:
    """Change the built `scheduler` (this pass's own instance) so it applies `params`."""
    if params is None:
        return
    if params.sigma_min is not None or params.sigma_max is not None or params.rho is not None:
        _replace_sigma_formulas(scheduler, params)
    if params.step_kwargs:
        scheduler.step = partial(scheduler.step, **params.step_kwargs)
    if params.churn:
        apply_sigma_churn(scheduler, params.churn)
    if params.ancestral_eta != 1.0 and isinstance(scheduler, EulerAncestralDiscreteScheduler):
        scheduler.step = _ancestral_eta_step(scheduler, params.ancestral_eta)
    elif params.ancestral_eta != 1.0 or params.ancestral_noise != 1.0:
        apply_ancestral_eta(scheduler, params.ancestral_eta, params.ancestral_noise)
    if params.noise_multiplier != 1.0 or params.extra_noise > 0:
        scheduler.add_noise = _scaled_add_noise(scheduler, params.noise_multiplier, params.extra_noise)


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> np.ndarray:
    """Karras et al. (2022) schedule: n sigmas from sigma_max to sigma_min, evenly spaced in sigma^(1/rho)."""
    ramp = np.linspace(0.0, 1.0, n)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def polyexponential_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 1.0) -> np.ndarray:
    """n sigmas from sigma_max to sigma_min, log-sigma following ramp^rho (rho 1 = exponential)."""
    ramp = np.linspace(1.0, 0.0, n) ** rho
    return np.exp(ramp * (math.log(sigma_max) - math.log(sigma_min)) + math.log(sigma_min))


def _replace_sigma_formulas(scheduler, params: SamplerParams) -> None:
    """The scheduler's Karras/exponential/beta conversions with A1111's sigma range and rho.

    diffusers reads sigma_min/sigma_max from the config (when the class has them) and fixes rho at 7, so the
    instance gets its own conversions; the formulas are the published ones."""
    def ends(in_sigmas) -> tuple[float, float]:
        low = params.sigma_min if params.sigma_min is not None else float(in_sigmas[-1])
        high = params.sigma_max if params.sigma_max is not None else float(in_sigmas[0])
        return low, high

    # Some classes (LMS) pass no step count: theirs is already set on the instance.
    def karras(in_sigmas, num_inference_steps=None):
        low, high = ends(in_sigmas)
        n = num_inference_steps or scheduler.num_inference_steps
        return karras_sigmas(n, low, high, params.rho or 7.0)

    def exponential(in_sigmas, num_inference_steps=None):
        low, high = ends(in_sigmas)
        rho = params.rho if params.schedule_key == "polyexponential" and params.rho else 1.0
        return polyexponential_sigmas(num_inference_steps or scheduler.num_inference_steps, low, high, rho)

    scheduler._convert_to_karras = karras
    scheduler._convert_to_exponential = exponential
    if params.sigma_min is not None or params.sigma_max is not None:
        # The beta conversion reads the range from the config only.
        scheduler.register_to_config(sigma_min=params.sigma_min, sigma_max=params.sigma_max)


def _ancestral_eta_step(scheduler, eta: float):
    """Euler a's step with A1111's eta: the noise share sigma_up scaled by eta (0 = plain Euler).

    diffusers' step moves to sigma_down and adds noise * sigma_up for eta 1; that step's noise is taken back
    out of its result and the move is redone with eta's sigma_up/sigma_down: the random stream is kept."""
    step = scheduler.step

    # wraps(): pipelines read step's signature to decide whether to pass `generator`
    @wraps(step)
    def run(model_output, timestep, sample, *args, **kwargs):
        if scheduler.step_index is None:
            scheduler._init_step_index(timestep)
        index = scheduler.step_index
        sigma_from, sigma_to = scheduler.sigmas[index], scheduler.sigmas[index + 1]
        out = step(model_output, timestep, sample, *args, **kwargs)
        return_dict = kwargs.get("return_dict", True)
        prev, x0 = (out.prev_sample, out.pred_original_sample) if return_dict else (out[0], out[1])
        if sigma_to <= 0:
            return out
        up1 = (sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2) / sigma_from ** 2) ** 0.5
        down1 = (sigma_to ** 2 - up1 ** 2) ** 0.5
        up = torch.minimum(sigma_to, eta * up1)
        down = (sigma_to ** 2 - up ** 2) ** 0.5
        # prev = sample + d * (down1 - sigma) + noise * up1, d the Euler derivative (sample - x0) / sigma.
        s, d = sample.float(), (sample.float() - x0.float()) / sigma_from
        noise = (prev.float() - s - d * (down1 - sigma_from)) / up1
        new = (s + d * (down - sigma_from) + noise * up).to(prev.dtype)
        if return_dict:
            out.prev_sample = new
            return out
        return (new, *out[1:])

    return run


def _scaled_add_noise(scheduler, multiplier: float, extra: float):
    """add_noise with the noise scaled by `multiplier`, plus `extra` times that noise in k-diffusion units
    (A1111 adds it to x + noise * sigma; schedulers that keep latents scaled by sqrt(alpha) get it scaled)."""
    add_noise = scheduler.add_noise

    @wraps(add_noise)
    def run(original_samples, noise, timesteps, *args, **kwargs):
        noise = noise * multiplier
        noisy = add_noise(original_samples, noise, timesteps, *args, **kwargs)
        if extra <= 0:
            return noisy
        scale = 1.0
        if float(scheduler.init_noise_sigma) == 1.0:  # variance-preserving latents (DDIM, UniPC, DPM++)
            t = int(torch.as_tensor(timesteps).flatten()[0])
            scale = float(scheduler.alphas_cumprod[t]) ** 0.5
        return noisy + noise * (extra * scale)

    return run


def img2img_schedule(steps: int, strength: float, fix_steps: bool) -> tuple[int, float, int]:
    """(num_inference_steps, strength for the pipeline, steps that run) of an img2img pass; strength 0-1.

    By default diffusers (like A1111) runs int(steps * strength) of `steps`. A1111's img2img_fix_steps runs
    exactly `steps`: a schedule of int(steps / strength) of which the last `steps` run; the strength handed to
    diffusers is nudged so that its int(n * strength) gives exactly `steps`."""
    if not fix_steps or strength <= 0:
        return steps, strength, int(steps * strength)
    total = max(steps, int(steps / min(strength, 0.999)))
    return total, min(1.0, (steps + 0.5) / total), steps
