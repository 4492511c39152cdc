"""Infotext of ControlNet units as sd-webui-controlnet writes it, and parsing it back for paste:
`ControlNet 0: "Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 1, ..."` (one quoted
value per unit; the core's infotext writer quotes values that hold commas)."""
from __future__ import annotations

from typing import Any

from .units import ControlUnit, control_mode_name, resize_mode_name

# (label, ControlUnit field) in sd-webui-controlnet's order.
FIELDS: tuple[tuple[str, str], ...] = (
    ("Module", "module"), ("Model", "model"), ("Weight", "weight"), ("Resize Mode", "resize_mode"),
    ("Processor Res", "processor_res"), ("Threshold A", "threshold_a"), ("Threshold B", "threshold_b"),
    ("Guidance Start", "guidance_start"), ("Guidance End", "guidance_end"),
    ("Pixel Perfect", "pixel_perfect"), ("Control Mode", "control_mode"),
)
_FLOATS = {"weight", "threshold_a", "threshold_b", "guidance_start", "guidance_end"}


def label(index: int) -> str:
    return f"ControlNet {index}"


def format_unit(unit: ControlUnit, model_title: str) -> str:
    """The unit's infotext value (without the quotes the writer adds)."""
    values = {**{f: getattr(unit, f) for _, f in FIELDS}, "model": model_title}
    return ", ".join(f"{name}: {_number(values[f]) if f in _FLOATS else values[f]}" for name, f in FIELDS)


def parse_unit(text: str) -> dict[str, Any]:
    """ControlUnit field -> value from one unit's infotext value (unknown labels are ignored)."""
    by_label = dict(FIELDS)
    out: dict[str, Any] = {}
    for part in _split(text):
        name, sep, value = part.partition(":")
        field = by_label.get(name.strip())
        if not sep or field is None:
            continue
        value = value.strip()
        if field in _FLOATS:
            out[field] = float(value)
        elif field == "processor_res":
            out[field] = int(float(value))
        elif field == "pixel_perfect":
            out[field] = value.lower() == "true"
        elif field == "control_mode":
            out[field] = control_mode_name(value)
        elif field == "resize_mode":
            out[field] = resize_mode_name(value)
        else:
            out[field] = value
    if out:
        out["enabled"] = True
    return out


def _split(text: str) -> list[str]:
    # A model title may hold ", " only inside its [hash] brackets, never: split on ", " outside brackets.
    parts, depth, current = [], 0, []
    for ch in text.strip().strip('"'):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _number(value: float) -> str:
    """1.0 -> "1", 0.5 -> "0.5" (as sd-webui-controlnet prints them)."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(round(value, 6))
