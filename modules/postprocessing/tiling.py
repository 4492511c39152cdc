"""Run an image-to-image network over a large image in tiles, with bounded memory and blended seams.

A network's activations grow with the input's area (an ESRGAN on a 2048x2048 image wants tens of GB), so
the image is cut into `tile`-sized pieces that overlap by `overlap` pixels; each piece runs alone, and
its output is blended into the result with weights that fall off linearly across the overlap, so no
seam shows where two tiles meet. Memory is one tile's activations plus the output image.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

# (1, C, h, w) in [0, 1] -> (1, C, h * scale, w * scale)
TileFn = Callable[[torch.Tensor], torch.Tensor]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets (pixels) of tiles of `tile` covering `length` with at least `overlap` in common."""
    if length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)  # the last tile ends exactly at the edge
    return starts


def _ramp(size: int, fade_start: int, fade_end: int, device, dtype) -> torch.Tensor:
    """Weights 1 inside, falling linearly to near 0 over `fade_start` pixels at the start and
    `fade_end` at the end (an edge of the image gets no fade: nothing else covers it)."""
    w = torch.ones(size, device=device, dtype=dtype)
    if fade_start > 0:
        w[:fade_start] = torch.arange(1, fade_start + 1, device=device, dtype=dtype) / (fade_start + 1)
    if fade_end > 0:
        w[size - fade_end:] = torch.minimum(
            w[size - fade_end:], torch.arange(fade_end, 0, -1, device=device, dtype=dtype) / (fade_end + 1))
    return w


def upscale_tiled(run: TileFn, image: torch.Tensor, scale: int, tile: int, overlap: int) -> torch.Tensor:
    """`run` over `image` (1, C, H, W) in tiles of `tile` pixels (0 = whole image) overlapping by
    `overlap` pixels; returns (1, C_out, H * scale, W * scale) on `image`'s device."""
    _, _, height, width = image.shape
    if tile <= 0 or (height <= tile and width <= tile):
        return run(image)
    overlap = max(0, min(overlap, tile // 2))
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    out = weight = None
    for y in ys:
        for x in xs:
            piece = image[:, :, y:y + tile, x:x + tile]
            result = run(piece)
            if out is None:
                out = torch.zeros((1, result.shape[1], height * scale, width * scale), device=result.device,
                                  dtype=torch.float32)
                weight = torch.zeros((1, 1, height * scale, width * scale), device=result.device,
                                     dtype=torch.float32)
            h, w = piece.shape[2] * scale, piece.shape[3] * scale
            # Fade only towards a neighbour: the overlap this tile shares with the one before/after it.
            fade_top = _shared(ys, y, tile, before=True) * scale
            fade_bottom = _shared(ys, y, tile, before=False) * scale
            fade_left = _shared(xs, x, tile, before=True) * scale
            fade_right = _shared(xs, x, tile, before=False) * scale
            mask = (_ramp(h, fade_top, fade_bottom, result.device, torch.float32)[:, None]
                    * _ramp(w, fade_left, fade_right, result.device, torch.float32)[None, :])
            ys0, xs0 = y * scale, x * scale
            out[:, :, ys0:ys0 + h, xs0:xs0 + w] += result.float() * mask
            weight[:, :, ys0:ys0 + h, xs0:xs0 + w] += mask
            del result
    return (out / weight.clamp_min(1e-8)).to(image.dtype)


def _shared(starts: list[int], start: int, tile: int, *, before: bool) -> int:
    """Pixels this tile shares with its neighbour before (or after) it along one axis; 0 at the edge."""
    index = starts.index(start)
    if before:
        return max(0, starts[index - 1] + tile - start) if index > 0 else 0
    return max(0, start + tile - starts[index + 1]) if index + 1 < len(starts) else 0
