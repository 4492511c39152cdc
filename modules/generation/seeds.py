"""A1111 seeds: per-image seeds (seed + i), and the initial noise of a batch from modules.rng.

The noise itself (sources GPU/CPU/NV, variation seeds by slerp, seed resize, ENSD, step noise) lives in
modules/rng; this module keeps the seed arithmetic and the short calls the generation modes use.
"""
from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from modules.rng.image_rng import ImageNoise, ImageRNG, place_resized, slerp
from modules.rng.sources import RngConfig, seeded_generator

MAX_SEED = 2**32 - 1
__all__ = ["MAX_SEED", "create_latents", "create_noise", "fresh_generators", "image_rng", "job_seeds",
           "place_resized", "resolve_seed", "slerp", "step_generators"]


def resolve_seed(seed: int | None) -> int:
    """-1 (or None) -> a random 32-bit seed; any other value is kept."""
    if seed is None or int(seed) == -1:
        return random.randrange(MAX_SEED)
    return int(seed)


def job_seeds(seed: int, count: int) -> list[int]:
    """Seeds of the images of one job: image i gets seed + i (seed -1 is resolved first)."""
    first = resolve_seed(seed)
    return [first + i for i in range(count)]


def image_rng(config: RngConfig, seeds: Sequence[int], subseeds: Sequence[int] | None,
              subseed_strength: float, resize_from: tuple[int, int] | None = None, factor: int = 8) -> ImageRNG:
    """The noise streams of one batch; resize_from is (width, height) in pixels (0 = off), `factor` the VAE's
    pixels per latent cell."""
    return ImageRNG(config, seeds, subseeds, subseed_strength, resize_from, factor)


def create_noise(seed: int, subseed: int | None, subseed_strength: float, shape: Sequence[int],
                 resize_from: tuple[int, int] | None = None, factor: int = 8,
                 config: RngConfig | None = None) -> torch.Tensor:
    """Initial noise of one image (C, H/8, W/8), float32 (CPU generators unless `config` says otherwise)."""
    return ImageNoise(config or RngConfig(), seed, subseed, subseed_strength, resize_from, factor).draw(shape)


def create_latents(seeds: Sequence[int], subseeds: Sequence[int] | None, subseed_strength: float,
                   shape: Sequence[int], resize_from: tuple[int, int] | None = None,
                   factor: int = 8, config: RngConfig | None = None) -> torch.Tensor:
    """Initial noise of a batch (B, C, H/8, W/8): image i's equals create_noise of its seed alone."""
    return ImageRNG(config or RngConfig(), seeds, subseeds, subseed_strength, resize_from, factor).draw(shape)


def step_generators(seeds: Sequence[int], shape: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per image, advanced past its initial noise (the CPU source without ENSD)."""
    generators = []
    for seed in seeds:
        generator = seeded_generator(seed)
        torch.randn(tuple(shape), generator=generator)
        generators.append(generator)
    return generators


def fresh_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One new CPU generator per image."""
    return [seeded_generator(seed) for seed in seeds]
