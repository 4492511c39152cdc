"""ControlNet units as data: one `ControlUnit` per unit, parsed from the API's unit dicts
(sd-webui-controlnet / webuiapi field names) or from the UI section's flat argument list."""
from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from modules.types import UserInputError

# The per-unit order of the UI section's components; the section returns n_units * len(UI_FIELDS) values.
UI_FIELDS: tuple[str, ...] = (
    "enabled", "image", "use_img2img_input", "module", "model", "weight", "guidance_start", "guidance_end",
    "control_mode", "resize_mode", "pixel_perfect", "processor_res", "threshold_a", "threshold_b",
)
# sd-webui-controlnet's names; the index is the API's integer form.
CONTROL_MODES: tuple[str, ...] = ("Balanced", "My prompt is more important", "ControlNet is more important")
RESIZE_MODES: tuple[str, ...] = ("Just Resize", "Crop and Resize", "Resize and Fill")
# Older clients sent these spellings (sd-webui-controlnet accepts them too).
_RESIZE_ALIASES = {"envelope": "Resize and Fill", "scale to fit (inner fit)": "Crop and Resize",
                   "inner fit": "Crop and Resize", "outer fit": "Resize and Fill",
                   "just resize": "Just Resize", "crop and resize": "Crop and Resize",
                   "resize and fill": "Resize and Fill"}


@dataclass
class ControlUnit:
    """One ControlNet unit. Weights are multipliers (0 = no effect); guidance_start/end are fractions
    0..1 of the pass's steps; processor_res and thresholds go to the preprocessor."""

    enabled: bool = True
    module: str = "none"
    model: str = "None"
    weight: float = 1.0
    image: Image.Image | None = None
    mask: Image.Image | None = None
    use_img2img_input: bool = False
    resize_mode: str = "Crop and Resize"
    processor_res: int = 512
    threshold_a: float = -1.0
    threshold_b: float = -1.0
    guidance_start: float = 0.0
    guidance_end: float = 1.0
    control_mode: str = "Balanced"
    pixel_perfect: bool = False
    low_vram: bool = False
    hr_option: str = "Both"
    extra: dict[str, Any] = field(default_factory=dict)  # fields we accept but do not use

    @property
    def active(self) -> bool:
        """Enabled and naming a model (sd-webui-controlnet skips units with model "None")."""
        return bool(self.enabled) and self.model not in ("", "None", "none", None)


def parse_units(args: Any) -> list[ControlUnit]:
    """Units from `request.extensions["controlnet"]["args"]`: a list of dicts (API) or a flat list of
    n_units * len(UI_FIELDS) values (UI). A dict alone is one unit."""
    if args is None:
        return []
    if isinstance(args, dict):
        args = [args]
    args = list(args)
    if not args:
        return []
    if all(isinstance(a, dict) or _is_unit_object(a) for a in args):
        return [unit_from_dict(_as_dict(a), i) for i, a in enumerate(args)]
    if len(args) % len(UI_FIELDS):
        raise UserInputError(f"ControlNet: {len(args)} section values is not a multiple of {len(UI_FIELDS)} "
                             "(one unit is " + ", ".join(UI_FIELDS) + ")")
    units = []
    for i in range(len(args) // len(UI_FIELDS)):
        values = dict(zip(UI_FIELDS, args[i * len(UI_FIELDS):(i + 1) * len(UI_FIELDS)]))
        units.append(unit_from_dict(values, i))
    return units


def unit_from_dict(d: dict[str, Any], index: int = 0) -> ControlUnit:
    """One unit from sd-webui-controlnet's field names (`image` or webuiapi-era `input_image`)."""
    where = f"ControlNet unit {index}"
    known = set(ControlUnit.__dataclass_fields__) - {"image", "mask", "extra"}
    raw_image = d.get("image")
    if raw_image in (None, "") and d.get("input_image") not in (None, ""):
        raw_image = d.get("input_image")
    mask = d.get("mask") if d.get("mask") not in (None, "") else d.get("mask_image")
    if isinstance(raw_image, dict):  # {"image": ..., "mask": ...} or Gradio ImageEditor's value
        mask = raw_image.get("mask") if raw_image.get("mask") is not None else mask
        raw_image = raw_image.get("image", raw_image.get("composite", raw_image.get("background")))
    control_mode = d.get("control_mode", d.get("guessmode", 0))
    unit = ControlUnit(
        enabled=_bool(d.get("enabled", True)),
        module=str(d.get("module") or "none"),
        model=str(d.get("model") or "None"),
        weight=_float(d.get("weight", 1.0), f"{where} weight"),
        image=decode_image(raw_image, f"{where} image"),
        mask=decode_image(mask, f"{where} mask", mode="L"),
        use_img2img_input=_bool(d.get("use_img2img_input", False)),
        resize_mode=resize_mode_name(d.get("resize_mode", "Crop and Resize"), where),
        processor_res=int(_float(d.get("processor_res", 512), f"{where} processor_res")),
        threshold_a=_float(d.get("threshold_a", -1), f"{where} threshold_a"),
        threshold_b=_float(d.get("threshold_b", -1), f"{where} threshold_b"),
        guidance_start=_float(d.get("guidance_start", 0.0), f"{where} guidance_start"),
        guidance_end=_float(d.get("guidance_end", 1.0), f"{where} guidance_end"),
        control_mode=control_mode_name(control_mode, where),
        pixel_perfect=_bool(d.get("pixel_perfect", False)),
        low_vram=_bool(d.get("low_vram", False)),
        hr_option=str(d.get("hr_option") or "Both"),
        extra={k: v for k, v in d.items() if k not in known and k not in ("image", "input_image", "mask",
                                                                              "mask_image", "guessmode")},
    )
    if not 0.0 <= unit.guidance_start <= unit.guidance_end <= 1.0:
        raise UserInputError(f"{where}: guidance start/end must satisfy 0 <= start <= end <= 1 "
                             f"(got {unit.guidance_start}, {unit.guidance_end})")
    if unit.processor_res <= 0 and unit.processor_res != -1:
        raise UserInputError(f"{where}: processor_res must be positive (got {unit.processor_res})")
    return unit


def control_mode_name(value: Any, where: str = "ControlNet") -> str:
    """The mode's name from its name (any case) or index 0..2; bool True is the old guess mode."""
    if isinstance(value, bool):
        return CONTROL_MODES[2] if value else CONTROL_MODES[0]
    return _choice(value, CONTROL_MODES, f"{where} control_mode", {})


def resize_mode_name(value: Any, where: str = "ControlNet") -> str:
    """The resize mode's name from its name (any case, old aliases) or index 0..2."""
    return _choice(value, RESIZE_MODES, f"{where} resize_mode", _RESIZE_ALIASES)


def decode_image(value: Any, what: str, mode: str = "RGB") -> Image.Image | None:
    """A PIL image from base64 (with or without a data: prefix), a PIL image or an HxWxC uint8 array."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, Image.Image):
        return value.convert(mode)
    if isinstance(value, str):
        data = value.split(",", 1)[1] if value.startswith("data:") else value
        try:
            return Image.open(io.BytesIO(base64.b64decode(data, validate=False))).convert(mode)
        except (binascii.Error, OSError, ValueError) as exc:
            raise UserInputError(f"{what}: not a base64-encoded image ({exc.__class__.__name__})") from None
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        import numpy as np

        arr = np.asarray(value)
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        return Image.fromarray(arr).convert(mode)
    raise UserInputError(f"{what}: expected a base64 image, got {type(value).__name__}")


def _choice(value: Any, names: tuple[str, ...], what: str, aliases: dict[str, str]) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if int(value) == value and 0 <= int(value) < len(names):
            return names[int(value)]
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit() and int(text) < len(names):
            return names[int(text)]
        for name in names:
            if name.lower() == text.lower():
                return name
        if text.lower() in aliases:
            return aliases[text.lower()]
    raise UserInputError(f"{what}: {value!r} is not one of " + ", ".join(repr(n) for n in names))


def _float(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{what}: expected a number, got {value!r}") from None


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def _is_unit_object(value: Any) -> bool:
    return hasattr(value, "to_dict") and callable(value.to_dict)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else value.to_dict()
