"""A job's noise in the generation modes: the RngConfig from the settings, one ImageRNG per batch and pass,
the scope that gives a pass's pipeline call that noise, and the RNG/ENSD infotext keys.

A1111 makes a new ImageRNG for every sampling pass (first pass, hires pass, img2img) with the batch's seeds,
variation seeds and seed resize; the refiner continues the first pass's streams.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from modules.devices import execution_device
from modules.generation.runtime import unet_dtype
from modules.rng.diffusers_noise import noise_routed
from modules.rng.image_rng import ImageRNG
from modules.rng.sources import DEFAULT_SOURCE, RngConfig, rng_config
from modules.sampler_params import DDIM_ETA_SAMPLERS, SamplerParams
from modules.types import GenerationRequest


def job_rng_config(env: Any, pipe: Any) -> RngConfig:
    """Source and ENSD from the job's settings, on the device `pipe` runs on."""
    return rng_config(env.setting, execution_device(pipe))


def batch_rng(config: RngConfig, request: GenerationRequest, seeds: Sequence[int], subseeds: Sequence[int],
              factor: int) -> ImageRNG:
    """The noise streams of one batch's pass: the request's variation strength and seed resize apply."""
    resize = (request.seed_resize_from_w, request.seed_resize_from_h)
    return ImageRNG(config, seeds, subseeds, request.subseed_strength, resize, factor)


@contextlib.contextmanager
def pass_noise(rng: ImageRNG, pipe: Any, spec: Any) -> Iterator[dict[str, Any]]:
    """Pipeline kwargs (`generator=`) that make this pass's call draw its noise from `rng`."""
    with noise_routed(rng, pipe, spec.sampler.scheduler_cls) as generators:
        yield {"generator": generators}


def first_noise(rng: ImageRNG, pipe: Any, shape: Sequence[int]) -> torch.Tensor:
    """The batch's initial noise (B, C, H, W) on the pipeline's device in the UNet's dtype."""
    return rng.draw(shape).to(execution_device(pipe), unet_dtype(pipe))


def rng_infotext(config: RngConfig, sampler: Any, params: SamplerParams | None) -> dict[str, Any]:
    """Infotext keys: "RNG" when not GPU; "ENSD" when non-zero and the sampler draws step noise (A1111's
    uses_ensd, and the eta that runs, `params`' (request or setting), not 0)."""
    out: dict[str, Any] = {}
    uses_ensd = bool(getattr(sampler, "api_extra", {}).get("uses_ensd")) and effective_eta(sampler, params) != 0
    if config.ensd and uses_ensd:
        out["ENSD"] = config.ensd
    if config.source != DEFAULT_SOURCE:
        out["RNG"] = config.source
    return out


def effective_eta(sampler: Any, params: SamplerParams | None) -> float:
    """The eta the pass runs with: DDIM's (default 0) or the ancestral noise share (default 1). An eta that
    diffusers cannot apply to a sampler (see sampler_params) stays at 1 there: that sampler still adds noise."""
    ddim = getattr(sampler, "name", None) in DDIM_ETA_SAMPLERS
    if params is None:
        return 0.0 if ddim else 1.0
    return params.eta if ddim else params.ancestral_eta
