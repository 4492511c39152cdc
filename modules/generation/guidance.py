"""Steps without the unconditional pass: A1111's "Skip Early CFG" and "Negative Guidance minimum sigma" (NGMS).

Rules, as A1111's CFG denoiser applies them (evaluations counted from 0 within one sampling pass, `total`
the evaluations the pass expects: steps, or 2 * steps - 1 for Heun-like samplers):
- Skip Early CFG (setting `skip_early_cond`, a fraction): skip when it is not 0 and index / total <= it,
  so any value above 0 skips at least the first evaluation.
- NGMS (`s_min_uncond`, a sigma; the request's `s_min_uncond` wins over the setting): otherwise skip when
  it is above 0, the evaluation's sigma is below it, and the index is odd, or on every index with the
  setting `s_min_uncond_all` ("NGMS all steps").
A skipped evaluation uses the conditional prediction where the unconditional one would be and combines at
scale 1, i.e. the step's prediction is the prompt's own (CFG 1). With AND, the first sub-prompt's
prediction stands in for uncond (A1111's `fake_uncond`). Infotext gets `Skip Early CFG: x`, `NGMS: x`,
`NGMS all steps: True` only when a rule fired, as in A1111.

How it runs on diffusers: the pipeline keeps its CFG batch ([uncond, cond] rows, prompt editing swapping
both halves as usual); a wrapper on the UNet instance's `forward` sees each evaluation after all module
pre-hooks (ControlNet has added residuals for the whole batch by then) and, on a skipped one, runs only the
cond rows of every batch-sized input and hands back the cond prediction for both halves, so diffusers'
uncond + g * (cond - uncond) is the cond prediction. That halves the UNet's work on those steps. With an
AND patch underneath, the uncond rows get the cond rows' inputs instead (the patch needs both halves).
At CFG <= 1 diffusers has no uncond rows: the rules are still evaluated (A1111 writes the infotext then
too) but there is nothing to skip.
"""
from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch

from modules.unet_rows import sample_of, take_rows, with_sample

if TYPE_CHECKING:  # typing.Self is 3.11+; annotations are strings here
    from typing_extensions import Self

EARLY, NGMS = "early", "ngms"
_MISSING = object()


@dataclass(frozen=True)
class UncondSkip:
    """The job's skip rules: early_fraction in [0, 1] (0 = off), min_sigma in sigma units (0 = off)."""

    early_fraction: float = 0.0
    min_sigma: float = 0.0
    all_steps: bool = False
    # Which rules fired in this job (for infotext): shared by every pass and batch of the job.
    fired: set[str] = field(default_factory=set, compare=False, hash=False)

    def rule_at(self, index: int, total: int, sigma: float | None) -> str | None:
        """EARLY, NGMS or None for 0-based evaluation `index` of `total` at noise level `sigma`."""
        if self.early_fraction != 0 and index / max(1, total) <= self.early_fraction:
            return EARLY
        if (self.min_sigma > 0 and sigma is not None and sigma < self.min_sigma
                and (index % 2 == 1 or self.all_steps)):
            return NGMS
        return None

    def infotext(self) -> dict[str, Any]:
        """A1111's infotext keys for the rules that fired."""
        out: dict[str, Any] = {}
        if EARLY in self.fired:
            out["Skip Early CFG"] = self.early_fraction
        if NGMS in self.fired:
            out["NGMS"] = self.min_sigma
            if self.all_steps:
                out["NGMS all steps"] = True
        return out


def resolve_uncond_skip(request, setting: Callable[[str], Any]) -> UncondSkip | None:
    """The job's rules from the settings (and request.s_min_uncond); None when both are off."""
    given = getattr(request, "s_min_uncond", None)
    min_sigma = float(given if given is not None else setting("s_min_uncond") or 0.0)
    early = float(setting("skip_early_cond") or 0.0)
    if min_sigma <= 0 and early == 0:
        return None
    return UncondSkip(early_fraction=early, min_sigma=max(0.0, min_sigma),
                      all_steps=bool(setting("s_min_uncond_all")))


def timestep_sigma(scheduler, timestep) -> float | None:
    """The noise level (k-diffusion sigma) of a UNet timestep from the model's alphas_cumprod; between two
    trained timesteps log-sigma is interpolated linearly (the inverse of diffusers' sigma -> timestep).
    None for schedulers without alphas_cumprod (flow matching)."""
    alphas = getattr(scheduler, "alphas_cumprod", None)
    if alphas is None:
        return None
    t = float(timestep.flatten()[0]) if torch.is_tensor(timestep) else float(timestep)
    last = len(alphas) - 1
    t = min(max(t, 0.0), float(last))
    low = int(math.floor(t))
    high = min(low + 1, last)

    def log_sigma(i: int) -> float:
        a = float(alphas[i])
        return 0.5 * math.log((1.0 - a) / a)

    w = t - low
    return math.exp((1.0 - w) * log_sigma(low) + w * log_sigma(high))


class UncondSkipPatch:
    """Context manager: while active, `pipe.unet` skips the uncond rows on the evaluations `skip` names."""

    def __init__(self, pipe, skip: UncondSkip, *, composable: bool = False):
        self.pipe, self.skip, self.composable = pipe, skip, composable
        self.calls = 0
        self._unet = None
        self._saved: Any = _MISSING

    def __enter__(self) -> Self:
        if self._unet is not None:
            raise RuntimeError("the uncond-skip patch is already active")
        unet = self.pipe.unet
        self.calls = 0
        self._saved = unet.__dict__.get("forward", _MISSING)
        unet.forward = functools.partial(self._forward, unet.forward)
        self._unet = unet
        return self

    def __exit__(self, *exc) -> None:
        unet, self._unet = self._unet, None
        if self._saved is _MISSING:
            unet.__dict__.pop("forward", None)
        else:
            unet.forward = self._saved
        self._saved = _MISSING

    def _forward(self, inner, *args, **kwargs):
        index, self.calls = self.calls, self.calls + 1
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs.get("timestep")
        scheduler = self.pipe.scheduler
        total = getattr(self.pipe, "_num_timesteps", None) or len(getattr(scheduler, "timesteps", ()) or ())
        sigma = timestep_sigma(scheduler, timestep) if timestep is not None else None
        rule = self.skip.rule_at(index, int(total or 1), sigma)
        if rule is None:
            return inner(*args, **kwargs)
        self.skip.fired.add(rule)
        rows = sample.shape[0]
        if not getattr(self.pipe, "do_classifier_free_guidance", False) or rows % 2:
            return inner(*args, **kwargs)  # no [uncond, cond] batch: nothing to skip
        half = rows // 2
        cond_rows = torch.arange(half, rows, device=sample.device)
        if self.composable:
            # The AND patch below needs both halves: give the uncond rows the cond rows' inputs, so its
            # "uncond" is the first sub-prompt's prediction, and keep its combined cond rows for both.
            picked = torch.cat([cond_rows, cond_rows])
            result = inner(*take_rows(list(args), picked, rows), **take_rows(kwargs, picked, rows))
            cond = sample_of(result)[half:]
        else:
            result = inner(*take_rows(list(args), cond_rows, rows), **take_rows(kwargs, cond_rows, rows))
            cond = sample_of(result)
        return with_sample(result, torch.cat([cond, cond]))


def uncond_skipping(pipe, skip: UncondSkip | None, *, composable: bool = False):
    """The patch for one pass, or a no-op when there are no rules (or the pipeline has no UNet)."""
    if skip is None or getattr(pipe, "unet", None) is None:
        return contextlib.nullcontext()
    return UncondSkipPatch(pipe, skip, composable=composable)
