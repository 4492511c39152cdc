"""One noise stream per image, as A1111's ImageRNG: the first draw is the initial noise (variation seed by
slerp, seed resize by placing the old size's noise in the centre), later draws are the sampler's step noise.

Each image has its own generator, so an image in a batch gets exactly the noise it gets alone.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from modules.rng.sources import RngConfig


def slerp(t: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation low (t=0) -> high (t=1) of (C, H, W) noise, as A1111 does it: one angle per
    channel and column (vectors along H), so the result is what A1111 makes for the same seeds."""
    low_n = low / torch.norm(low, dim=1, keepdim=True)
    high_n = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_n * high_n).sum(1)
    if dot.mean() > 0.9995:  # nearly parallel: sin(omega) ~ 0, a plain lerp is the safe answer
        return (1 - t) * low + t * high
    omega = torch.acos(dot.clamp(-1.0, 1.0))
    so = torch.sin(omega)
    low_weight = (torch.sin((1.0 - t) * omega) / so).unsqueeze(1)
    return low_weight * low + (torch.sin(t * omega) / so).unsqueeze(1) * high


def place_resized(noise: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """Seed resize: `noise` (C, h, w) of the old size centred in `background` (C, H, W) of the new size, with
    A1111's offsets (floor halves; a larger old size is cropped from its centre)."""
    out = background.clone()
    dx = (out.shape[2] - noise.shape[2]) // 2
    dy = (out.shape[1] - noise.shape[1]) // 2
    w = noise.shape[2] if dx >= 0 else noise.shape[2] + 2 * dx
    h = noise.shape[1] if dy >= 0 else noise.shape[1] + 2 * dy
    tx, ty = max(dx, 0), max(dy, 0)
    sx, sy = max(-dx, 0), max(-dy, 0)
    out[:, ty:ty + h, tx:tx + w] = noise[:, sy:sy + h, sx:sx + w]
    return out


class ImageNoise:
    """The noise stream of one image: `draw(shape)` gives the initial noise first, then step noise."""

    def __init__(self, config: RngConfig, seed: int, subseed: int | None = None,
                 subseed_strength: float = 0.0, resize_from: tuple[int, int] | None = None, factor: int = 8):
        self.config = config
        self.seed = int(seed)
        self.subseed = subseed
        self.subseed_strength = float(subseed_strength)
        self.resize_from = resize_from  # (width, height) in pixels, or None
        self.factor = factor  # the VAE's pixels per latent cell
        self.generator = config.create_generator(self.seed)
        self.drawn = False

    def draw(self, shape: Sequence[int]) -> torch.Tensor:
        """Standard normal float32 noise of `shape` (C, H, W) from this image's stream."""
        shape = tuple(int(s) for s in shape)
        if self.drawn:
            return self.config.randn(self.generator, shape)
        self.drawn = True
        return self._first(shape)

    def _first(self, shape: tuple[int, ...]) -> torch.Tensor:
        config = self.config
        noise_shape = shape
        if self.resize_from is not None and self.resize_from[0] > 0 and self.resize_from[1] > 0:
            width, height = (int(v) for v in self.resize_from)
            noise_shape = (shape[0], height // self.factor, width // self.factor)
        resized = noise_shape != shape
        # The old size's noise comes from a fresh generator of the seed; the image's own generator then
        # gives the new size's background (A1111 draws them in this order).
        noise = config.randn(config.create_generator(self.seed) if resized else self.generator, noise_shape)
        if self.subseed is not None and self.subseed_strength != 0:
            subnoise = config.randn(config.create_generator(int(self.subseed)), noise_shape)
            noise = slerp(self.subseed_strength, noise, subnoise.to(noise.device))
        if resized:
            noise = place_resized(noise, config.randn(self.generator, shape))
        if config.ensd:
            # ENSD: the step noise comes from seed + delta, not from where the first draw left the stream.
            self.generator = config.create_generator(self.seed + config.ensd)
        return noise


class ImageRNG:
    """The noise streams of a batch: image i uses seeds[i] and subseeds[i]."""

    def __init__(self, config: RngConfig, seeds: Sequence[int], subseeds: Sequence[int] | None = None,
                 subseed_strength: float = 0.0, resize_from: tuple[int, int] | None = None, factor: int = 8):
        subs = list(subseeds) if subseeds is not None else [None] * len(seeds)
        self.config = config
        self.seeds = [int(s) for s in seeds]
        self.images = [ImageNoise(config, seed, sub, subseed_strength, resize_from, factor)
                       for seed, sub in zip(self.seeds, subs)]

    def draw(self, shape: Sequence[int], indices: Sequence[int] | None = None) -> torch.Tensor:
        """(len(indices), *shape) noise, one draw from each listed image's stream (all images by default)."""
        chosen = range(len(self.images)) if indices is None else indices
        return torch.stack([self.images[i].draw(shape).to(self.config.torch_device) for i in chosen])
