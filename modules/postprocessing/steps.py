"""Extras steps: the ordered operations of one Extras job (upscale, and what extensions add: split, crop,
flip, caption, ...), each a function from a list of images to a list of images.

A step gets every image the steps before it made from one source image, so it may turn one image into
several (split, flip), change them (crop) or drop them, and it may attach a caption (saved as
`<image>.txt` beside the saved image) and `Label: value` info (written into the `extras` text chunk).
A step that raises is reported as a warning naming it and its input goes on to the next step unchanged:
a broken step never loses an image.

Order: a step's `order` (upscale is 1000, the dataset steps 4000..4040, as A1111's), unless the setting
`postprocessing_operation_order` names steps: those come first, in that order. Steps named in
`postprocessing_disable_in_extras` are neither shown nor run in Extras.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from PIL import Image

log = logging.getLogger(__name__)

UPSCALE = "Upscale"  # the core's step; its arguments are the request's A1111 upscale fields
ENABLE = "enable"  # every step's args carry it: the section's Enable checkbox
ORDER_SETTING = "postprocessing_operation_order"
DISABLED_SETTING = "postprocessing_disable_in_extras"


@dataclass
class PostprocessedImage:
    """One image going through the steps. `name` is the source's file name plus a suffix per copy (a step
    that makes copies names them, e.g. "photo-flipped.png"); `caption` None: no caption file."""

    image: Image.Image
    name: str = "image.png"
    caption: str | None = None
    info: dict[str, Any] = field(default_factory=dict)  # "Label: value" pairs for the extras chunk

    def copy_with(self, image: Image.Image, suffix: str = "") -> PostprocessedImage:
        """A new item for `image`, with this one's caption and info; `suffix` goes before the extension."""
        stem, dot, ext = self.name.rpartition(".")
        name = f"{stem}{suffix}{dot}{ext}" if dot else f"{self.name}{suffix}"
        return PostprocessedImage(image, name, self.caption, dict(self.info))


StepFn = Callable[[list[PostprocessedImage], dict[str, Any]], "list[PostprocessedImage] | None"]


@dataclass(frozen=True)
class ExtrasStep:
    """A step of the Extras tab. `process(images, args)` returns the new list (None: the list it got, edited
    in place). `build_ui()` (gradio, called inside the step's accordion) returns {arg name: component}; the
    values arrive as `args`, with `args["enable"]` the accordion's checkbox. `defaults` fill args that a
    caller (the API) leaves out. The name is the section title and the key in requests."""

    name: str
    process: StepFn
    build_ui: Callable[[], Mapping[str, Any]] | None = None
    order: int = 5000
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


def order_steps(steps: Iterable[ExtrasStep], order_setting: Sequence[str] = (),
                disabled: Sequence[str] = ()) -> list[ExtrasStep]:
    """The steps in run order: those named by `order_setting` first, in its order, then the rest by
    `order` (then name); steps named in `disabled` are left out. Names compare case-insensitively."""
    skip = {n.lower() for n in disabled}
    kept = [s for s in steps if s.name.lower() not in skip]
    position = {n.lower(): i for i, n in enumerate(order_setting)}
    return sorted(kept, key=lambda s: (position.get(s.name.lower(), len(position)), s.order, s.name.lower()))


def step_args(step: ExtrasStep, given: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The args for `step` from a request's {step name: args} (name case-insensitive), defaults filled in;
    None when the step is not enabled there."""
    wanted = step.name.lower()
    args = next((dict(v) for k, v in given.items() if k.lower() == wanted), None)
    if args is None or not args.get(ENABLE, True):
        return None
    return {**step.defaults, **args, ENABLE: True}


def run_steps(items: list[PostprocessedImage], steps: Sequence[tuple[ExtrasStep, dict[str, Any]]],
              warnings: list[str]) -> list[PostprocessedImage]:
    """Run each (step, args) on the list in turn; a step that raises adds a warning naming it (once) and
    hands its input on unchanged."""
    for step, args in steps:
        # The step works on copies: one that edits items and then raises leaves the originals as they were.
        work = [replace(i, info=dict(i.info)) for i in items]
        try:
            out = step.process(work, args)
            result = work if out is None else list(out)
            bad = [type(i).__name__ for i in result if not isinstance(i, PostprocessedImage)]
            if bad:
                raise TypeError(f"returned {bad[0]} items, not PostprocessedImage")
        except Exception as exc:  # noqa: BLE001 - an extension's failing step is a warning, not a lost image
            log.warning("Extras step %r failed", step.name, exc_info=True)
            message = f"Extras step {step.name!r} failed: {type(exc).__name__}: {exc}"
            if message not in warnings:
                warnings.append(message)
            continue
        items = result
    return items


def info_text(info: Mapping[str, Any]) -> str:
    """The `extras` chunk: "Label: value, Label: value" (whole floats without ".0")."""
    return ", ".join(f"{k}: {_fmt(v)}" for k, v in info.items())


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
