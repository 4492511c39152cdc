"""The sampler's denoised prediction (x0) of its latest step, kept so that an interrupted pass returns it.

A1111 stops sampling at the step where Interrupt or Skip lands and decodes that step's denoised
prediction, not the noisy latents the sampler would have continued from, so the user gets a clean if
early picture. diffusers' pipelines keep only the noisy latents; `denoised_trace` wraps one scheduler's
`step` for one pass and remembers what each step predicted.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

# Solvers whose `model_outputs` hold x0 predictions (DPM-Solver++ variants; UniPC with predict_x0).
_X0_ALGORITHMS = ("dpmsolver++", "sde-dpmsolver++")


@dataclass
class DenoisedTrace:
    """What the pass predicted last (latents in the scheduler's space) and how many steps ran."""

    latest: torch.Tensor | None = None
    steps: int = 0


def _step_args(args: tuple, kwargs: dict) -> tuple[Any, Any, Any]:
    names = ("model_output", "timestep", "sample")
    values = list(args[:3]) + [kwargs.get(n) for n in names[len(args[:3]):]]
    return values[0], values[1], values[2]


def predicted_original(scheduler, result, model_output, timestep, sample) -> torch.Tensor | None:
    """x0 as this scheduler's step predicted it; None when it cannot be known."""
    # 1. k-diffusion-style schedulers (Euler, LMS, Heun, DPM2, DPM++ SDE), DDIM and LCM hand it back.
    # TCD's second value is its sample re-noised to the next boundary, not x0: it takes the formula in 3.
    if type(scheduler).__name__ == "TCDScheduler":
        candidate = None
    elif isinstance(result, tuple):
        candidate = result[1] if len(result) > 1 else None
    else:
        candidate = getattr(result, "pred_original_sample", None)
        if candidate is None:
            candidate = getattr(result, "denoised", None)
    if isinstance(candidate, torch.Tensor):
        return candidate
    # 2. DPM-Solver++ (multi- and single-step) and UniPC keep their x0 predictions.
    config = scheduler.config
    outputs = getattr(scheduler, "model_outputs", None)
    if outputs and isinstance(outputs[-1], torch.Tensor) and (
            config.get("algorithm_type") in _X0_ALGORITHMS or config.get("predict_x0") is True):
        return outputs[-1]
    # 3. PNDM/PLMS work on DDPM latents: x_t = sqrt(a) x0 + sqrt(1 - a) eps at this timestep.
    alphas = getattr(scheduler, "alphas_cumprod", None)
    if alphas is None or not isinstance(sample, torch.Tensor) or not isinstance(model_output, torch.Tensor):
        return None
    a = alphas[int(timestep)].to(sample.device, torch.float32)
    x, out = sample.float(), model_output.float()
    kind = config.get("prediction_type", "epsilon")
    if kind == "epsilon":
        return ((x - (1 - a).sqrt() * out) / a.sqrt()).to(sample.dtype)
    if kind == "v_prediction":
        return (a.sqrt() * x - (1 - a).sqrt() * out).to(sample.dtype)
    return model_output if kind == "sample" else None


@contextlib.contextmanager
def denoised_trace(scheduler) -> Iterator[DenoisedTrace]:
    """Record each `scheduler.step`'s x0 prediction for one pass; the scheduler is unchanged on exit."""
    trace = DenoisedTrace()
    original = scheduler.step

    # wraps(): pipelines read step's signature to decide whether to pass `generator` and `eta`
    @functools.wraps(original)
    def step(*args, **kwargs):
        result = original(*args, **kwargs)
        x0 = predicted_original(scheduler, result, *_step_args(args, kwargs))
        trace.latest = x0.detach() if x0 is not None else None
        trace.steps += 1
        return result

    scheduler.step = step  # instance attribute: the class and other schedulers are untouched
    try:
        yield trace
    finally:
        del scheduler.step


def stopped_early(pipe, trace: DenoisedTrace) -> bool:
    """True when Interrupt/Skip made diffusers skip steps of this call (its `_interrupt` flag is set)."""
    if not getattr(pipe, "_interrupt", False):
        return False
    planned = getattr(pipe, "_num_timesteps", None)
    return planned is None or trace.steps < planned
