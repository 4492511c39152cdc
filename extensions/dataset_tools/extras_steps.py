"""Preprocess as Extras steps: split oversized images, auto focal point crop, auto-sized crop, flipped copies
and caption, each an accordion in the Extras tab (A1111 1.6+ names and order, 4000..4040, after the
upscale at 1000). Every step calls the functions the Train tab's Preprocess uses (preprocess_ops.py,
focal.py, the taggers of service.py): one implementation, two ways in.

Each step writes what it did into the image's info (the `extras` text chunk); Caption sets the caption
that run_extras saves as `<image>.txt` beside the saved image.
"""
from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from modules.extensions.api import ExtrasStep, PostprocessedImage

from .captions import FILENAME, filename_caption, merge
from .focal import FocalWeights
from .preprocess_ops import (
    FLIP_MODES,
    AutoSizeOptions,
    SplitOptions,
    flipped_copies,
    process_image,
    split_tiles,
)
from .taggers.options import TagOptions

SPLIT, FOCAL, AUTOSIZE, FLIP, CAPTION = (
    "Split oversized images", "Auto focal point crop", "Auto-sized crop", "Create flipped copies", "Caption")
SPLIT_DEFAULTS = {"width": 512, "height": 512, "threshold": 0.5, "overlap": 0.2}
AUTOSIZE_DEFAULTS = asdict(AutoSizeOptions())  # the Train tab's defaults, one source
FLIP_DEFAULTS = {"option": ["Horizontal"]}


def _target(args: dict[str, Any]) -> tuple[int, int]:
    width, height = int(args["width"]), int(args["height"])
    if not (8 <= width <= 8192 and 8 <= height <= 8192):
        raise ValueError(f"size {width}x{height}: give 8 to 8192 pixels a side")
    return width, height


def split_step(items: list[PostprocessedImage], args: dict[str, Any]) -> list[PostprocessedImage]:
    """Oversized images into overlapping target-sized tiles (preprocess_ops.split_tiles); others unchanged."""
    target = _target(args)
    options = SplitOptions(float(args["threshold"]), float(args["overlap"]))
    out = []
    for item in items:
        tiles = split_tiles(item.image.convert("RGB"), target, options)
        if tiles is None:
            out.append(item)
            continue
        for i, tile in enumerate(tiles):
            copy = item.copy_with(tile, f"-tile{i + 1}")
            copy.info["Split oversized images"] = f"{target[0]}x{target[1]}, tile {i + 1} of {len(tiles)}"
            out.append(copy)
    return out


def focal_step(weights_default):
    """Crop to the target size around faces/entropy/edges (Preprocess's focal crop); weights default to
    the settings the Train tab uses."""
    def process(items: list[PostprocessedImage], args: dict[str, Any]) -> list[PostprocessedImage]:
        target = _target(args)
        base = weights_default()
        weights = FocalWeights(float(args.get("face_weight", base.face)),
                               float(args.get("entropy_weight", base.entropy)),
                               float(args.get("edges_weight", base.edges)))
        for item in items:
            item.image = process_image(item.image, target, "focal", weights=weights)[0].image
            item.info["Auto focal point crop"] = f"{target[0]}x{target[1]}"
        return items
    return process


def autosize_step(items: list[PostprocessedImage], args: dict[str, Any]) -> list[PostprocessedImage]:
    """Centre crop to the multiple-of-64 size nearest each image's ratio (Preprocess's auto-size)."""
    options = AutoSizeOptions(min_side=int(args["min_side"]), max_side=int(args["max_side"]),
                              min_area=int(args["min_area"]), max_area=int(args["max_area"]),
                              objective=str(args["objective"]), max_error=float(args["max_error"]))
    for item in items:
        item.image = process_image(item.image, (8, 8), "auto-size", autosize=options)[0].image
        item.info["Auto-sized crop"] = f"{item.image.width}x{item.image.height}"
    return items


def flip_step(items: list[PostprocessedImage], args: dict[str, Any]) -> list[PostprocessedImage]:
    """Every image, then its flipped copies (Horizontal, Vertical, Both), named <name>-flipped..."""
    option = args["option"]
    modes = tuple([option] if isinstance(option, str) else option)
    out = []
    for item in items:
        out.append(item)
        for suffix, copy in flipped_copies(item.image, modes):
            out.append(item.copy_with(copy, suffix))
    return out


def caption_step(service, options_default):
    """The caption from a tagger (WD14, DeepDanbooru, CLIP) or the source file name, appended to a caption
    an earlier step set; the thresholds default to the Interrogate settings."""
    def process(items: list[PostprocessedImage], args: dict[str, Any]) -> list[PostprocessedImage]:
        tagger = str(args.get("tagger") or FILENAME).strip()
        base = options_default()
        general = float(args.get("general_threshold", base.general_threshold))
        character = float(args.get("character_threshold", base.character_threshold))
        options = replace(base, general_threshold=general, character_threshold=character)
        caption = _captioner(service, tagger, options)
        for item in items:
            text = caption(item)
            item.caption = merge(item.caption, text) if item.caption else text
            item.info["Caption"] = tagger
        return items
    return process


def _captioner(service, tagger: str, options: TagOptions):
    if tagger == FILENAME:
        return lambda item: filename_caption(Path(_source_name(item.name)), options)
    provider, name = service.tagger(tagger)  # ModelNotFound names the known taggers
    if hasattr(provider, "unavailable"):  # missing weights: one message for the step, not one per image
        raise RuntimeError(provider.unavailable())
    return lambda item: provider.caption(item.image, name, options)


def _source_name(name: str) -> str:
    """The file name a copy came from: "photo-tile2-flipped.png" -> "photo.png" (its caption is the source's)."""
    stem, dot, ext = name.rpartition(".")
    stem = stem if dot else name
    for marker in ("-flipped-hv", "-flipped-v", "-flipped"):
        stem = stem.removesuffix(marker)
    head, _, tail = stem.rpartition("-tile")
    stem = head if head and tail.isdigit() else stem
    return f"{stem}{dot}{ext}" if dot else stem


def steps(api, service) -> list[ExtrasStep]:
    """The five steps, with the settings the Train tab reads as their defaults."""
    from .routes_preprocess import focal_defaults
    from .tagger_settings import options_from_settings

    def weights():
        return focal_defaults(api)

    def tag_options():
        return options_from_settings(api)

    def focal_args():
        w = weights()
        return {"width": 512, "height": 512, "face_weight": w.face, "entropy_weight": w.entropy,
                "edges_weight": w.edges}

    return [
        ExtrasStep(SPLIT, split_step, _ui("split_ui"), order=4000, defaults=SPLIT_DEFAULTS,
                   description="tiles of the target size along the long side, when it exceeds the target's"),
        ExtrasStep(FOCAL, focal_step(weights), _ui("focal_ui", focal_args), order=4010,
                   defaults={"width": 512, "height": 512},
                   description="crop around faces, entropy and edges"),
        ExtrasStep(AUTOSIZE, autosize_step, _ui("autosize_ui"), order=4020, defaults=AUTOSIZE_DEFAULTS,
                   description="a multiple-of-64 size near the image's ratio"),
        ExtrasStep(FLIP, flip_step, _ui("flip_ui"), order=4030, defaults=FLIP_DEFAULTS,
                   description=f"extra copies: {', '.join(FLIP_MODES)}"),
        ExtrasStep(CAPTION, caption_step(service, tag_options),
                   _ui("caption_ui", lambda: service, tag_options), order=4040, defaults={"tagger": FILENAME},
                   description="<image>.txt beside each saved image"),
    ]


def _ui(builder: str, *arg_fns):
    """A build_ui that imports the widgets (gradio) only when the Extras tab is built, not at setup."""
    def build():
        from . import ui_extras_steps

        return getattr(ui_extras_steps, builder)(*(fn() for fn in arg_fns))
    return build


def add_steps(api, service) -> None:
    for step in steps(api, service):
        api.add_extras_step(step)
