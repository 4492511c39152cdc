"""A1111 seeds: per-image seeds, initial noise, variation seeds (slerp) and seed resize.

Noise comes from a CPU `torch.Generator` per image, so an image in a batch gets the same noise as the
same seed generated alone, and the same seed gives the same noise on any device (A1111's "RNG: CPU").
"""
from __future__ import annotations

import random
from collections.abc import Sequence

import torch

MAX_SEED = 2**32 - 1


def resolve_seed(seed: int | None) -> int:
    """-1 (or None) -> a random 32-bit seed; any other value is kept."""
    if seed is None or int(seed) == -1:
        return random.randrange(MAX_SEED)
    return int(seed)


def job_seeds(seed: int, count: int) -> list[int]:
    """Seeds of the images of one job: image i gets seed + i (seed -1 is resolved first)."""
    first = resolve_seed(seed)
    return [first + i for i in range(count)]


def image_noise(seed: int, shape: Sequence[int]) -> torch.Tensor:
    """Standard normal noise of `shape` (C, H/8, W/8) from a CPU generator seeded with `seed`."""
    generator = torch.Generator("cpu").manual_seed(int(seed))
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32)


def slerp(t: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation from `low` (t=0) to `high` (t=1); linear when the two are near parallel."""
    if t <= 0:
        return low
    if t >= 1:
        return high
    low_n = low / low.norm()
    high_n = high / high.norm()
    dot = (low_n * high_n).sum().clamp(-1.0, 1.0)
    # Nearly parallel vectors make sin(omega) ~ 0; plain lerp is the numerically safe answer there.
    if dot.abs() > 0.9995:
        return (1 - t) * low + t * high
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * low + (torch.sin(t * omega) / so) * high


def place_centred(small: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """Copy `small` (C, h, w) into the middle of `background` (C, H, W), cropping whichever is larger."""
    out = background.clone()
    _, h, w = small.shape
    _, big_h, big_w = out.shape
    copy_h, copy_w = min(h, big_h), min(w, big_w)
    # Offsets into each tensor: the larger one is entered at its centre minus half the copied size.
    src_y, src_x = (h - copy_h) // 2, (w - copy_w) // 2
    dst_y, dst_x = (big_h - copy_h) // 2, (big_w - copy_w) // 2
    out[:, dst_y:dst_y + copy_h, dst_x:dst_x + copy_w] = small[:, src_y:src_y + copy_h, src_x:src_x + copy_w]
    return out


def create_noise(seed: int, subseed: int | None, subseed_strength: float, shape: Sequence[int],
                 resize_from: tuple[int, int] | None = None, factor: int = 8) -> torch.Tensor:
    """Initial noise of one image (C, H/8, W/8); resize_from is (width, height) in pixels or None,
    `factor` the VAE's pixels per latent cell (8 for every SD model)."""
    shape = tuple(int(s) for s in shape)
    noise_shape = shape
    if resize_from is not None and resize_from[0] > 0 and resize_from[1] > 0:
        # Seed resize: the noise the old size would get, so a composition survives a size change.
        noise_shape = (shape[0], int(resize_from[1]) // factor, int(resize_from[0]) // factor)
    noise = image_noise(seed, noise_shape)
    if subseed is not None and subseed_strength > 0:
        noise = slerp(float(subseed_strength), noise, image_noise(subseed, noise_shape))
    if noise_shape != shape:
        noise = place_centred(noise, image_noise(seed, shape))
    return noise


def create_latents(seeds: Sequence[int], subseeds: Sequence[int] | None, subseed_strength: float,
                   shape: Sequence[int], resize_from: tuple[int, int] | None = None,
                   factor: int = 8) -> torch.Tensor:
    """Noise for a batch (B, C, H/8, W/8), float32 on the CPU: one `create_noise` per seed."""
    subs = list(subseeds) if subseeds is not None else [None] * len(seeds)
    return torch.stack([create_noise(s, sub, subseed_strength, shape, resize_from, factor)
                        for s, sub in zip(seeds, subs)])


def step_generators(seeds: Sequence[int], shape: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per image, advanced past its initial noise: ancestral/SDE step noise continues
    each image's own stream, so batch members stay equal to single runs and never reuse the start noise."""
    generators = []
    for seed in seeds:
        generator = torch.Generator("cpu").manual_seed(int(seed))
        torch.randn(tuple(shape), generator=generator)
        generators.append(generator)
    return generators


def fresh_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One new CPU generator per image: passes that draw their own noise (img2img, hires) start from it."""
    return [torch.Generator("cpu").manual_seed(int(seed)) for seed in seeds]
