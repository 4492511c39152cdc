"""A procedural captioned dataset for the demo model: 1-3 flat shapes in named colours on a named background.

Everything comes from `random.Random` (Mersenne Twister, the same stream on every platform and Python 3
version) and PIL's integer rasteriser, so (seed, index, size) gives the same pixels and caption everywhere.
Each sample keeps the attribute record it was drawn from, so tests and metrics can check what a caption says.

    venv/bin/python -m tools.demo_model.dataset --out /tmp/shapes --count 64 --size 128
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from PIL import Image, ImageDraw

# Saturated, well separated RGB values: the colour words must map to hues a metric can tell apart.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 70, 225), "yellow": (240, 220, 30),
    "purple": (140, 40, 190), "orange": (245, 135, 20), "white": (245, 245, 245), "black": (15, 15, 15),
}
SHAPES = ("circle", "square", "triangle", "star")
SIZES: dict[str, float] = {"small": 0.13, "large": 0.27}  # circumradius as a fraction of the image side
POSITIONS: dict[str, tuple[float, float]] = {  # shape centre as fractions of (width, height)
    "left": (0.27, 0.5), "right": (0.73, 0.5), "top": (0.5, 0.27), "bottom": (0.5, 0.73),
    "centre": (0.5, 0.5),
}
POSITION_WORDS: dict[str, tuple[str, ...]] = {  # how a caption says it; "center" too, users type both
    "left": ("on the left",), "right": ("on the right",), "top": ("at the top",),
    "bottom": ("at the bottom",), "centre": ("in the centre", "in the center", "in the middle"),
}
SUPERSAMPLE = 4  # drawn this much larger, then downscaled: smooth edges without PIL's aliasing


@dataclass(frozen=True)
class ShapeRecord:
    """One drawn shape; cx, cy, radius in pixels of the rendered image (radius: circumradius)."""

    shape: str
    colour: str
    size: str
    position: str
    cx: float
    cy: float
    radius: float


@dataclass(frozen=True)
class Sample:
    """One image with its caption, the caption's style ("plain" or "tags") and what was drawn."""

    index: int
    image: Image.Image
    caption: str
    style: str
    background: str
    shapes: tuple[ShapeRecord, ...]

    def record(self) -> dict:
        """The attributes as plain JSON data (no pixels)."""
        return {"index": self.index, "caption": self.caption, "style": self.style,
                "background": self.background, "shapes": [asdict(s) for s in self.shapes]}


def sample_rng(seed: int, index: int) -> random.Random:
    # one independent stream per image: sample i does not depend on how many came before it
    return random.Random(seed * 1_000_003 + index)


# ---- the scene ---------------------------------------------------------------------------------------

def _place(rng: random.Random, count: int, side: int) -> list[tuple[str, str, float, float, float]]:
    """(size, position, cx, cy, radius) per shape: distinct positions, no centre covered by another shape."""
    positions = rng.sample(sorted(POSITIONS), count)
    placed: list[tuple[str, str, float, float, float]] = []
    for position in positions:
        fx, fy = POSITIONS[position]
        # several shapes crowd the picture: large ones only where they fit
        sizes = ["large", "small"] if count == 1 else ["small", "small", "large"]
        size = rng.choice(sizes)
        for attempt in range(2):
            radius = SIZES[size] * side * rng.uniform(0.9, 1.1)
            cx = (fx + rng.uniform(-0.04, 0.04)) * side
            cy = (fy + rng.uniform(-0.04, 0.04)) * side
            clear = all(math.dist((cx, cy), (ox, oy)) > max(radius, orad) + 0.02 * side
                        for _, _, ox, oy, orad in placed)
            if clear or attempt == 1:
                break
            size = "small"
        if not clear:  # even small it would hide another centre: leave this shape out
            continue
        placed.append((size, position, cx, cy, radius))
    return placed


def make_scene(rng: random.Random, side: int) -> tuple[str, tuple[ShapeRecord, ...]]:
    """(background colour, shapes) of one picture of side x side pixels."""
    background = rng.choice(sorted(COLOURS))
    count = rng.choices((1, 2, 3), weights=(0.5, 0.3, 0.2))[0]
    shapes = []
    for size, position, cx, cy, radius in _place(rng, count, side):
        colour = rng.choice([c for c in sorted(COLOURS) if c != background])
        shapes.append(ShapeRecord(rng.choice(SHAPES), colour, size, position, cx, cy, radius))
    return background, tuple(shapes)


# ---- drawing -----------------------------------------------------------------------------------------

def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "square":  # axis-aligned, circumradius r
        h = r / math.sqrt(2)
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "triangle":  # equilateral, pointing up, centroid at the centre
        return [(cx + r * math.sin(a), cy - r * math.cos(a)) for a in (0, 2 * math.pi / 3, 4 * math.pi / 3)]
    if shape == "star":  # five points, inner radius 0.45 r: the centre is well inside
        return [(cx + (r if k % 2 == 0 else 0.45 * r) * math.sin(k * math.pi / 5),
                 cy - (r if k % 2 == 0 else 0.45 * r) * math.cos(k * math.pi / 5)) for k in range(10)]
    raise ValueError(f"unknown shape {shape!r}")


def render(background: str, shapes: tuple[ShapeRecord, ...], side: int) -> Image.Image:
    """The RGB picture, side x side pixels; shapes drawn in record order."""
    big = side * SUPERSAMPLE
    image = Image.new("RGB", (big, big), COLOURS[background])
    draw = ImageDraw.Draw(image)
    for s in shapes:
        cx, cy, r = s.cx * SUPERSAMPLE, s.cy * SUPERSAMPLE, s.radius * SUPERSAMPLE
        if s.shape == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=COLOURS[s.colour])
        else:
            points = [(round(x), round(y)) for x, y in _polygon(s.shape, cx, cy, r)]
            draw.polygon(points, fill=COLOURS[s.colour])
    return image.resize((side, side), Image.Resampling.BOX)


# ---- captions ----------------------------------------------------------------------------------------

def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _plain_phrase(rng: random.Random, s: ShapeRecord, keep_size: bool, keep_position: bool) -> str:
    words = ([s.size] if keep_size else []) + [s.colour, s.shape]
    words.insert(0, _article(words[0]))
    if keep_position:
        words.append(rng.choice(POSITION_WORDS[s.position]))
    return " ".join(words)


def caption(rng: random.Random, background: str, shapes: tuple[ShapeRecord, ...],
            background_share: float = 0.9) -> tuple[str, str]:
    """(caption, style): plain words (~70%) or comma tags; size and position are sometimes left out.

    Leaving attributes out teaches the model that "a red circle" alone means any size anywhere, which is
    what a newcomer types.
    """
    keep_size, keep_position = rng.random() < 0.6, rng.random() < 0.7
    with_background = rng.random() < background_share
    if rng.random() < 0.7:
        phrases = [_plain_phrase(rng, s, keep_size, keep_position) for s in shapes]
        text = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
        if with_background:
            text += rng.choice((f", {background} background",
                                f" on {_article(background)} {background} background"))
        return text, "plain"
    tags = []
    for s in shapes:
        tags.append(" ".join(([s.size] if keep_size else []) + [s.colour, s.shape]))
        if keep_position:
            tags.append(s.position)
    if with_background:
        tags.append(f"{background} background")
    return ", ".join(tags), "tags"


def partial_caption(sample: Sample, rng: random.Random) -> str | None:
    """A caption naming one of a several-shape scene's shapes only (None for a one-shape scene).

    A1111's `AND` adds each half's guidance, which draws both things only when "a red circle" also allows a
    picture that holds more than a red circle. Captions that always list every shape teach the opposite ("a
    red circle" means nothing else), and the halves of `a red circle AND a blue square` cancel.

    It never names the background: a caption that does stays a whole description, so `a red circle, white
    background` still means a red circle and nothing else on white, and only the background-less phrases
    an `AND` is usually written with ("a red circle") learn to leave room for other shapes.
    """
    if len(sample.shapes) < 2:
        return None
    return caption(rng, sample.background, (rng.choice(sample.shapes),), background_share=0.0)[0]


def shape_twin(sample: Sample) -> Sample | None:
    """The same one-shape scene with another shape (None for a several-shape scene).

    Colour, size, place and background stay; only the shape and the caption's shape word change. Trained in
    the same batch with the same noise as the original, the pair's loss differs only where the outlines do:
    the shape word's small signal without the colour's large one around it (docs/demo_model.md, r16).
    The other shape cycles with the index, so every pair of shapes is seen.
    """
    if len(sample.shapes) != 1:
        return None
    [original] = sample.shapes
    other = SHAPES[(SHAPES.index(original.shape) + 1 + sample.index % (len(SHAPES) - 1)) % len(SHAPES)]
    shapes = (replace(original, shape=other),)
    text = re.sub(rf"\b{original.shape}\b", other, sample.caption)
    return Sample(sample.index, render(sample.background, shapes, sample.image.size[0]), text, sample.style,
                  sample.background, shapes)


# ---- the dataset -------------------------------------------------------------------------------------

def make_sample(seed: int, index: int, side: int = 128) -> Sample:
    """Sample `index` of the dataset `seed`, drawn at side x side pixels (the same scene at every side)."""
    rng = sample_rng(seed, index)
    # the scene is laid out on a unit canvas, then scaled: 64 and 128 px show the same picture
    background, unit = make_scene(rng, 1)
    shapes = tuple(ShapeRecord(s.shape, s.colour, s.size, s.position, s.cx * side, s.cy * side,
                               s.radius * side) for s in unit)
    text, style = caption(rng, background, shapes)
    return Sample(index, render(background, shapes, side), text, style, background, shapes)


def make_dataset(seed: int, count: int, side: int = 128) -> list[Sample]:
    """Samples 0..count-1 of the dataset `seed`."""
    return [make_sample(seed, i, side) for i in range(count)]


def write_dataset(out: Path, seed: int, count: int, side: int) -> Path:
    """PNG files plus metadata.jsonl (file_name, caption and the attribute record) in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "metadata.jsonl", "w", encoding="utf-8") as f:
        for sample in make_dataset(seed, count, side):
            name = f"{sample.index:06d}.png"
            sample.image.save(out / name)
            f.write(json.dumps({"file_name": name, **sample.record()}) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size", type=int, default=128, choices=(64, 128))
    args = parser.parse_args(argv)
    print(write_dataset(args.out, args.seed, args.count, args.size))


if __name__ == "__main__":
    main()
