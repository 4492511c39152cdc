"""The X/Y/Z plot's axis model: what an axis type is, how a value is labelled, how an axis changes `p`
when that needs nothing of the app, how an API client's axis type is looked up and how an axis'
text becomes checked values. Pure Python: this module is shared by every app in the process (it is
imported once by name), so whatever needs an app's A1111 modules stays in scripts/xyz_grid.py.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import classic_xyz_values as values

TITLE = "X/Y/Z plot"


# -- labels -----------------------------------------------------------------------------------------
def _rounded(x):
    return round(x, 8) if isinstance(x, float) else x


def format_value_add_label(p, opt, x):
    return f"{opt.label}: {_rounded(x)}"


def format_value(p, opt, x):
    return _rounded(x)


def format_value_join_list(p, opt, x):
    return ", ".join(x)


def format_nothing(p, opt, x):
    return ""


def format_remove_path(p, opt, x):
    return os.path.basename(x)


def str_permutations(x):
    """Marks an axis whose values are every order of the given tokens (Prompt order)."""
    return x


# -- changes to p that need nothing of the app -------------------------------------------------------
def apply_field(field: str):
    def apply(p, x, xs):
        setattr(p, field, x)
    return apply


def do_nothing(p, x, xs):
    pass


def apply_prompt(p, x, xs):
    """Prompt S/R: the first value is the search string, each value replaces it."""
    if xs[0] not in p.prompt and xs[0] not in p.negative_prompt:
        raise ValueError(f"{TITLE}: Prompt S/R did not find {xs[0]!r} in the prompt or negative prompt")
    p.prompt = p.prompt.replace(xs[0], x)
    p.negative_prompt = p.negative_prompt.replace(xs[0], x)


def confirm_prompt_sr(p, xs):
    """The same check before anything generates (every first value leaves the prompt as it is)."""
    if xs[0] not in p.prompt and xs[0] not in p.negative_prompt:
        raise ValueError(f"{TITLE}: Prompt S/R did not find {xs[0]!r} in the prompt or negative prompt")


def apply_order(p, x, xs):
    """Prompt order: the tokens of `x` go back into the places where the tokens first appear, in x's order."""
    found = sorted((p.prompt.find(token), token) for token in x)
    rest, pieces = p.prompt, []
    for _, token in found:
        at = rest.find(token)
        pieces.append(rest[:at])
        rest = rest[at + len(token):]
    p.prompt = "".join(piece + token for piece, token in zip(pieces, x)) + rest


def confirm_prompt_order(p, xs):
    for token in (xs[0] if xs else ()):
        if token not in p.prompt:
            raise ValueError(f"{TITLE}: Prompt order: {token!r} is not in the prompt")


def parse_size(x: str) -> tuple[int, int]:
    width, _, height = str(x).lower().partition("x")
    try:
        return int(width.strip()), int(height.strip())
    except ValueError:
        raise ValueError(f"{TITLE}: size {x!r} must look like 512x768") from None


def apply_size(p, x, xs):
    p.width, p.height = parse_size(x)


def confirm_sizes(p, xs):
    for x in xs:
        parse_size(x)


def is_none(x) -> bool:
    return x in (None, "", "None", "none")


# -- axis types -------------------------------------------------------------------------------------
@dataclass
class AxisOption:
    """One axis type, with A1111's positional fields; `unsupported` says why this app cannot do it."""

    label: str
    type: Any
    apply: Callable | None
    format_value: Callable = format_value_add_label
    confirm: Callable | None = None
    cost: float = 0.0
    choices: Callable[[], list[str]] | None = None
    prepare: Callable | None = None
    is_img2img: bool | None = None  # None: both tabs
    unsupported: str = ""

    def __post_init__(self):  # the tab-specific subclasses set is_img2img here
        pass


class AxisOptionTxt2Img(AxisOption):
    def __post_init__(self):
        self.is_img2img = False


class AxisOptionImg2Img(AxisOption):
    def __post_init__(self):
        self.is_img2img = True


def unsupported(label: str, why: str, cls=AxisOption) -> AxisOption:
    return cls(label, str, None, unsupported=why)


def tab_options(options: list[AxisOption], is_img2img: bool) -> list[AxisOption]:
    """A tab's axes in A1111's order (what an index means), unsupported ones included."""
    return [o for o in options if o.is_img2img is None or o.is_img2img == bool(is_img2img)]


def find_axis(options: list[AxisOption], kind: Any, axis: str) -> AxisOption:
    """The axis an API client or the UI named: an index into the tab's `options`, or the label."""
    if kind is None or kind == "":
        return options[0]
    index = None
    if isinstance(kind, (int, float)) and not isinstance(kind, bool) and float(kind).is_integer():
        index = int(kind)
    elif isinstance(kind, str) and kind.strip().isdigit():
        index = int(kind.strip())
    if index is not None:
        if not 0 <= index < len(options):
            raise ValueError(f"{TITLE}: {axis} type {index} is out of range (0-{len(options) - 1})")
        found = options[index]
    else:
        wanted = str(kind).strip().lower()
        found = next((o for o in options if o.label.lower() == wanted), None)
        if found is None:
            raise ValueError(f"{TITLE}: unknown {axis} type {kind!r}")
    if found.unsupported:
        raise ValueError(f"{TITLE}: the {axis} axis {found.label!r} is not supported here: "
                         f"{found.unsupported}")
    return found


# -- one run's axes ---------------------------------------------------------------------------------
@dataclass
class Axis:
    """One axis of a run: its type, the text its values came from (for the infotext) and the values."""

    name: str
    opt: AxisOption
    text: str
    values: list[Any]

    def labels(self, p) -> list[str]:
        return [str(self.opt.format_value(p, self.opt, v)) for v in self.values]


def parse_axis(p, name: str, opt: AxisOption, text: str, dropdown, csv_mode: bool) -> Axis:
    """Parse and check an axis' values: the dropdown's choices for axes that have choices (unless
    csv_mode, or the dropdown is empty and text was given), else the text."""
    if opt.label == "Nothing":
        return Axis(name, opt, "", [0])
    if opt.choices is not None and not csv_mode and dropdown:
        raw = [str(v) for v in dropdown]
        text = values.to_csv(raw)
    elif opt.prepare is not None:
        raw = opt.prepare(text)
    else:
        raw = values.split_values(text or "")
    try:
        if opt.type is int:
            parsed: list[Any] = values.expand_ints(raw)
        elif opt.type is float:
            parsed = values.expand_floats(raw)
        elif opt.type is str_permutations:
            parsed = values.permutations(raw)
        else:
            parsed = [opt.type(v) for v in raw]
    except ValueError as exc:
        raise ValueError(f"{TITLE}: {name} values for {opt.label}: {exc}") from None
    if not parsed:
        raise ValueError(f"{TITLE}: {name} values for {opt.label} are empty")
    if opt.confirm is not None:
        opt.confirm(p, parsed)
    return Axis(name, opt, text or "", parsed)


def processing_order(x: AxisOption, y: AxisOption, z: AxisOption) -> tuple[str, str, str]:
    """Axis names from the outer loop to the inner one: the costliest axis (a checkpoint) changes least
    often; otherwise Z, then Y, then X (A1111's order and tie rules)."""
    first, second = "z", "y"
    if x.cost > y.cost and x.cost > z.cost:
        first, second = "x", ("y" if y.cost > z.cost else "z")
    elif y.cost > x.cost and y.cost > z.cost:
        first, second = "y", ("x" if x.cost > z.cost else "z")
    elif z.cost > x.cost and z.cost > y.cost:
        first, second = "z", ("x" if x.cost > y.cost else "y")
    third = ({"x", "y", "z"} - {first, second}).pop()
    return first, second, third
