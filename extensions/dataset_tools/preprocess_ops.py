"""The image operations of Preprocess: one source image in, the list of training images out.

Each function takes a PIL image and a target (width, height) in pixels and returns new images; none
writes files (preprocess.py does), so each can be tested and reused (Extras steps) on its own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageOps

from .focal import FocalAnalysis, FocalWeights, analyse, cover_size, main_face, window_around

CROP_MODES = ("focal", "center", "auto-size", "split", "none")
RESIZE_MODES = ("stretch", "fill")  # what crop "none" does: stretch to the size, or fit and pad
SIZE_STEP = 64  # auto-sized crops are multiples of 64 pixels, as the models want
FLIP_MODES = ("Horizontal", "Vertical", "Both")  # A1111's "Create flipped copies" choices
FLIP_SUFFIXES = {"Horizontal": "-flipped", "Vertical": "-flipped-v", "Both": "-flipped-hv"}


@dataclass(frozen=True)
class SplitOptions:
    """Split an image into tiles when its long side is more than (1 + threshold) times the target's.

    `threshold` and `overlap` are fractions: 0.5 splits a 2:1 image for a square target but not a 4:3
    one; 0.2 overlap repeats a fifth of each tile in the next, so no subject is cut at every seam."""

    threshold: float = 0.5
    overlap: float = 0.2


@dataclass(frozen=True)
class AutoSizeOptions:
    """Auto-sized crop: the multiple-of-64 size nearest the image's aspect ratio within these bounds.

    `objective` "area" takes the largest size whose ratio error is within `max_error` (a fraction),
    "error" the size whose ratio is closest."""

    min_side: int = 384
    max_side: int = 768
    min_area: int = 64 * 64
    max_area: int = 640 * 640
    objective: str = "area"
    max_error: float = 0.1


@dataclass
class Produced:
    """One output image and, for focal crops, what the crop was based on (for the debug overlay)."""

    image: Image.Image
    suffix: str = ""  # "" for a single output, "tile1", ... for splits
    analysis: FocalAnalysis | None = None
    scaled: Image.Image | None = None  # the covered image the focal box is in
    box: tuple[int, int, int, int] | None = None


def center_crop(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    """Scale to cover `target` and cut its middle."""
    scaled = image.resize(cover_size(image.size, target), Image.Resampling.LANCZOS)
    left, top = (scaled.width - target[0]) // 2, (scaled.height - target[1]) // 2
    return scaled.crop((left, top, left + target[0], top + target[1]))


def fill_resize(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    """Fit inside `target` and pad with the image's mean colour (nothing cut, nothing stretched)."""
    scale = min(target[0] / image.width, target[1] / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    fitted = image.resize(size, Image.Resampling.LANCZOS)
    mean = tuple(int(v) for v in fitted.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0)))
    out = Image.new("RGB", target, mean)
    out.paste(fitted, ((target[0] - size[0]) // 2, (target[1] - size[1]) // 2))
    return out


def auto_size(image_size: tuple[int, int], options: AutoSizeOptions) -> tuple[int, int]:
    """The crop size (width, height) for an image of `image_size` under `options`."""
    ratio = image_size[0] / image_size[1]
    sides = range(_round_up(options.min_side), max(options.max_side, options.min_side) + 1, SIZE_STEP)
    candidates = [(w, h) for w in sides for h in sides if options.min_area <= w * h <= options.max_area]
    if not candidates:  # bounds that admit nothing: the smallest side both ways
        side = _round_up(options.min_side)
        return side, side

    def error(size: tuple[int, int]) -> float:
        return abs(size[0] / size[1] - ratio) / ratio

    if options.objective == "area":
        good = [c for c in candidates if error(c) <= options.max_error]
        if good:
            return max(good, key=lambda c: (c[0] * c[1], -error(c)))
    return min(candidates, key=lambda c: (error(c), -c[0] * c[1]))


def _round_up(value: int) -> int:
    return max(SIZE_STEP, math.ceil(value / SIZE_STEP) * SIZE_STEP)


def split_tiles(image: Image.Image, target: tuple[int, int], options: SplitOptions) -> list[Image.Image] | None:
    """Overlapping target-sized tiles along the long side when the image is oversized, else None.

    The image is scaled so its short side (relative to the target's shape) matches the target; tiles are
    spread evenly from one end to the other, so the first and last touch the edges."""
    scaled_size = cover_size(image.size, target)
    along = 0 if scaled_size[0] / target[0] >= scaled_size[1] / target[1] else 1
    length, tile = scaled_size[along], target[along]
    if length <= tile * (1 + options.threshold):
        return None
    scaled = image.resize(scaled_size, Image.Resampling.LANCZOS)
    step = max(1, round(tile * (1 - min(max(options.overlap, 0.0), 0.9))))
    count = max(2, math.ceil((length - tile) / step) + 1)
    tiles = []
    for i in range(count):
        start = round((length - tile) * i / (count - 1))
        box = (start, 0, start + tile, target[1]) if along == 0 else (0, start, target[0], start + tile)
        tiles.append(scaled.crop(box))
    return tiles


def flipped_copies(image: Image.Image, modes: tuple[str, ...] = ("Horizontal",)
                   ) -> list[tuple[str, Image.Image]]:
    """(name suffix, copy) per mode, in FLIP_MODES order: Horizontal mirrors left-right (what Preprocess's
    "flip" writes), Vertical top-bottom, Both is the two together (a half turn)."""
    bad = [m for m in modes if m not in FLIP_MODES]
    if bad:
        raise ValueError(f"flip mode {bad[0]!r}: one of {', '.join(FLIP_MODES)}")
    make = {"Horizontal": ImageOps.mirror, "Vertical": ImageOps.flip,
            "Both": lambda im: im.transpose(Image.Transpose.ROTATE_180)}
    return [(FLIP_SUFFIXES[m], make[m](image)) for m in FLIP_MODES if m in modes]


def process_image(image: Image.Image, target: tuple[int, int], crop: str, *, resize_mode: str = "stretch",
                  weights: FocalWeights = FocalWeights(), split: SplitOptions = SplitOptions(),
                  autosize: AutoSizeOptions = AutoSizeOptions()) -> list[Produced]:
    """The training images made from one source image by crop mode `crop` (see CROP_MODES)."""
    if crop not in CROP_MODES:
        raise ValueError(f"unknown crop mode {crop!r}; one of {', '.join(CROP_MODES)}")
    image = image.convert("RGB")
    if crop == "focal":
        scaled = image.resize(cover_size(image.size, target), Image.Resampling.LANCZOS)
        analysis = analyse(scaled, target, weights)
        box = window_around(scaled.size, target, analysis.point, keep=main_face(analysis.faces))
        return [Produced(scaled.crop(box), analysis=analysis, scaled=scaled, box=box)]
    if crop == "center":
        return [Produced(center_crop(image, target))]
    if crop == "auto-size":
        return [Produced(center_crop(image, auto_size(image.size, autosize)))]
    if crop == "split":
        tiles = split_tiles(image, target, split)
        if tiles is None:  # not oversized: one centre crop, as A1111 did
            return [Produced(center_crop(image, target))]
        return [Produced(t, suffix=f"tile{i + 1}") for i, t in enumerate(tiles)]
    if resize_mode == "fill":
        return [Produced(fill_resize(image, target))]
    return [Produced(image.resize(target, Image.Resampling.LANCZOS))]
