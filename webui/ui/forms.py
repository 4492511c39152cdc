"""The one translation between widget values and GenerationRequest, both ways.

Tabs name their widgets by GenerationRequest field (`steps`, `sampler_name`, ...) plus a few UI-only keys
(`subseed_show`, `refiner_enable`, `img2img_mode`, ...). `request_from_values` turns such a dict into a
request; `values_from_infotext` turns an infotext (PNG Info, paste, send-to) into widget values.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import gradio as gr
from PIL import Image, ImageChops

from modules.images.infotext import PASTE_SETTINGS, infotext_to_request_fields, parse_infotext, setting_value
from modules.types import INPAINTING_FILL, RESIZE_MODES, GenerationRequest, UserInputError
from webui.ui.components.extension_sections import extension_fields

MASK_MODES = ("Inpaint masked", "Inpaint not masked")
INPAINT_AREAS = ("Whole picture", "Only masked")
IMG2IMG_MODES = ("img2img", "sketch", "inpaint", "inpaint_sketch", "inpaint_upload", "batch")
NONE_SCRIPT = "None"

_INT_FIELDS = ("steps", "width", "height", "n_iter", "batch_size", "seed", "subseed", "seed_resize_from_w",
               "seed_resize_from_h", "hr_second_pass_steps", "hr_resize_x", "hr_resize_y", "mask_blur",
               "inpaint_full_res_padding")
_FLOAT_FIELDS = ("cfg_scale", "subseed_strength", "hr_scale", "denoising_strength", "refiner_switch_at",
                 "hr_cfg_scale", "image_cfg_scale")
_TEXT_FIELDS = ("prompt", "negative_prompt", "sampler_name", "scheduler", "hr_upscaler", "hr_sampler_name",
                "hr_scheduler", "hr_prompt", "hr_negative_prompt", "refiner_checkpoint")
_BOOL_FIELDS = ("enable_hr", "tiling")
# Request fields that infotext carries but no widget shows (settings, the model): not pasted into forms.
_NOT_IN_FORMS = ("override_settings", "sd_model_checkpoint", "sd_vae", "clip_skip", "eta", "tiling")
_DEFAULTS = GenerationRequest()


# ---- widget values -> request ----------


def request_from_values(mode: str, values: Mapping[str, Any]) -> GenerationRequest:
    """A GenerationRequest from widget values keyed by field name; raises UserInputError naming the field."""
    fields: dict[str, Any] = {"mode": "txt2img" if mode == "txt2img" else "img2img"}
    for name in _INT_FIELDS:
        if name in values:
            fields[name] = _number(values[name], name, int)
    for name in _FLOAT_FIELDS:
        if name in values:
            fields[name] = _number(values[name], name, float)
    for name in _TEXT_FIELDS:
        if name in values:
            fields[name] = "" if values[name] is None else str(values[name])
    for name in _BOOL_FIELDS:
        if name in values:
            fields[name] = bool(values[name])
    fields["styles"] = tuple(values.get("styles") or ())

    # The "Extra" seed row only counts while it is open, as in A1111.
    if not values.get("subseed_show", False):
        for name in ("subseed", "subseed_strength", "seed_resize_from_w", "seed_resize_from_h"):
            fields.pop(name, None)
    # Seed-resize 0 means "off" on the page; the core's "off" is -1.
    for name in ("seed_resize_from_w", "seed_resize_from_h"):
        if fields.get(name) == 0:
            fields[name] = -1
    if "hr_cfg_scale" in fields and not values.get("enable_hr", False):
        fields.pop("hr_cfg_scale")
    if not values.get("refiner_enable", False):
        fields["refiner_checkpoint"] = ""
    elif not fields.get("refiner_checkpoint"):
        raise UserInputError("pick a refiner checkpoint or close the Refiner section", field="refiner_checkpoint")
    script = values.get("script_name")
    fields["script_name"] = "" if script in (None, "", NONE_SCRIPT) else str(script)
    # Extension sections and script controls: the same request.extensions / script_args as the API's.
    extensions, fields["script_args"] = extension_fields(values)
    fields["extensions"] = {**dict(values.get("extensions") or {}), **extensions}
    if values.get("override_settings"):
        fields["override_settings"] = override_settings_from_entries(values["override_settings"])

    if mode != "txt2img":
        fields.update(_img2img_fields(values))
        # Resize by: the size follows the input image, in multiples of 8 (the VAE works on 8x8 blocks).
        if values.get("resize_by", False) and fields.get("init_images"):
            scale = _number(values.get("scale_by", 1.0), "scale_by", float)
            first = fields["init_images"][0]
            fields["width"] = max(64, round(first.width * scale / 8) * 8)
            fields["height"] = max(64, round(first.height * scale / 8) * 8)
    return GenerationRequest(**fields)


def _number(value: Any, name: str, kind: type) -> Any:
    if value is None or value == "":
        return getattr(_DEFAULTS, name)
    try:
        return kind(round(float(value))) if kind is int else kind(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{value!r} is not a number", field=name) from None


def _img2img_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """Init images, mask and inpaint options from the img2img sub-tab that is selected."""
    out: dict[str, Any] = {}
    if "resize_mode" in values:
        out["resize_mode"] = _index(RESIZE_MODES, values["resize_mode"], "resize_mode")
    if "inpainting_fill" in values:
        out["inpainting_fill"] = _index(INPAINTING_FILL, values["inpainting_fill"], "inpainting_fill")
    if "mask_mode" in values:
        out["inpainting_mask_invert"] = _index(MASK_MODES, values["mask_mode"], "mask_mode")
    if "inpaint_area" in values:
        out["inpaint_full_res"] = _index(INPAINT_AREAS, values["inpaint_area"], "inpaint_area") == 1

    mode = values.get("img2img_mode") or "img2img"
    init, mask = None, None
    if mode == "img2img":
        init = open_image(values.get("init_img"), "init_images")
    elif mode == "sketch":
        init = editor_composite(values.get("sketch"), "init_images")
    elif mode == "inpaint":
        editor = values.get("init_img_with_mask")
        init = editor_background(editor, "init_images")
        mask = editor_mask(editor, init.size)
    elif mode == "inpaint_sketch":
        editor = values.get("inpaint_color_sketch")
        init = editor_composite(editor, "init_images")
        mask = editor_mask(editor, init.size)
    elif mode == "inpaint_upload":
        init = open_image(values.get("init_img_inpaint"), "init_images")
        mask = open_image(values.get("init_mask_inpaint"), "mask", what="a mask image")
    else:
        raise UserInputError(f"the {mode} sub-tab runs from its own button", field="img2img_mode")
    if mode.startswith("inpaint") and mask is not None and mask.getextrema() in ((0, 0), (0, 0, 0)):
        raise UserInputError("the mask is empty: paint over the part to change", field="mask")
    out["init_images"] = (init,)
    out["mask"] = mask
    return out


def _index(options: tuple[str, ...], value: Any, name: str) -> int:
    if isinstance(value, int):
        return value
    try:
        return options.index(value)
    except ValueError:
        raise UserInputError(f"{value!r} is not one of {', '.join(options)}", field=name) from None


def open_image(value: Any, field: str, what: str = "an input image") -> Image.Image:
    """A PIL image from an upload widget (a file path or an image); errors name the request field."""
    if value is None or value == "":
        raise UserInputError(f"img2img needs {what}: upload one first", field=field)
    if isinstance(value, Image.Image):
        return value
    try:
        image = Image.open(value)
        image.load()  # decode now: a broken upload is reported here with its field, not mid-sampling
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserInputError(f"could not read the image ({exc})", field=field) from None
    return image


def editor_background(editor: Mapping[str, Any] | None, field: str) -> Image.Image:
    """The picture under the brush strokes of an ImageEditor/ImageMask value."""
    image = (editor or {}).get("background")
    if image is None:
        raise UserInputError("img2img needs an input image: upload one first", field=field)
    return open_image(image, field).convert("RGB")


def editor_composite(editor: Mapping[str, Any] | None, field: str) -> Image.Image:
    """Background with the strokes drawn over it (sketch tabs start from this)."""
    image = (editor or {}).get("composite") or (editor or {}).get("background")
    if image is None:
        raise UserInputError("img2img needs an input image: upload one first", field=field)
    return open_image(image, field).convert("RGB")


def editor_mask(editor: Mapping[str, Any] | None, size: tuple[int, int]) -> Image.Image:
    """White where any layer has paint (its alpha), black elsewhere; 'L' at the background's size."""
    mask = Image.new("L", size, 0)
    for layer in (editor or {}).get("layers") or []:
        layer = open_image(layer, "mask")
        alpha = layer.getchannel("A") if "A" in layer.getbands() else layer.convert("L")
        if alpha.size != size:
            alpha = alpha.resize(size, Image.Resampling.NEAREST)
        mask = ImageChops.lighter(mask, alpha.point(lambda v: 255 if v > 0 else 0))
    return mask


# ---- infotext -> widget values ----------


def has_parameters(text: str) -> bool:
    """True when `text` ends in an A1111 parameters line (Steps: ..., Sampler: ...), not just a prompt."""
    last = (text or "").strip().split("\n")[-1]
    return last.count(":") >= 3 and "Steps:" in last


def values_from_infotext(text: str, labels: Mapping[str, str] | None = None,
                         paste_filter: Callable[[dict[str, Any]], None] | None = None,
                         settings: Any = None) -> dict[str, Any]:
    """Widget values (keyed like request fields, plus UI-only keys) that reproduce an infotext;
    `labels` (field name -> infotext label) adds extensions' fields; `paste_filter` (the registry's
    run_paste_filters) lets extensions edit the parsed infotext first. `override_settings` holds the
    "Label: value" entries for the Override settings box: those that differ from `settings`, or every
    candidate without `settings` (the box drops the equal ones itself, see components/override_settings)."""
    if not text or not text.strip():
        return {}
    parsed = parse_infotext(text)
    if paste_filter is not None:
        paste_filter(parsed)
    fields = infotext_to_request_fields(parsed)
    values = {k: v for k, v in fields.items() if k not in _NOT_IN_FORMS}
    values["override_settings"] = override_entries(parsed, settings)
    for name, label in (labels or {}).items():
        if label in parsed:
            values[name] = _pasted_value(parsed[label])
    if "inpainting_fill" in values:
        values["inpainting_fill"] = INPAINTING_FILL[values["inpainting_fill"]]
    if "inpaint_full_res" in values:
        values["inpaint_area"] = INPAINT_AREAS[int(bool(values.pop("inpaint_full_res")))]
    if "inpainting_mask_invert" in values:
        values["mask_mode"] = MASK_MODES[values.pop("inpainting_mask_invert")]
    # Seed-resize -1 ("off") is 0 on the page; the Extra row opens when the text uses any of its values.
    for name in ("seed_resize_from_w", "seed_resize_from_h"):
        if values.get(name, 0) < 0:
            values[name] = 0
    values["subseed_show"] = bool(values.get("subseed_strength", 0) or values.get("seed_resize_from_w", 0))
    values["refiner_enable"] = bool(values.get("refiner_checkpoint"))
    if values.get("hr_cfg_scale") is None:
        values.pop("hr_cfg_scale", None)
    return values


def _pasted_value(text: Any) -> Any:
    """An extension's infotext value for its widget: booleans and numbers as such, the rest as text."""
    if not isinstance(text, str):
        return text
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def paste_filter_of(ctx) -> Callable[[dict[str, Any]], None] | None:
    """The app's paste filters (extensions' api.add_paste_filter) as one callable; None without extensions."""
    registry = getattr(getattr(ctx, "extensions", None), "registry", None)
    return getattr(registry, "run_paste_filters", None)


def updates_from_infotext(text: str, field_names: Iterable[str], labels: Mapping[str, str] | None = None,
                          paste_filter: Callable[[dict[str, Any]], None] | None = None,
                          settings: Any = None) -> list:
    """One update per name in `field_names`: the infotext's value, or gr.skip() when it has none."""
    values = values_from_infotext(text, labels, paste_filter, settings)
    return [_update(name, values[name]) if name in values else gr.skip() for name in field_names]


def _update(name: str, value: Any):
    if name == "override_settings":
        # A multiselect keeps only values among its choices: the entries are its choices too.
        return gr.update(value=value, choices=value)
    return gr.update(value=value)


# ---- the Override settings box: "Label: value" entries ----------

_SETTING_OF_LABEL = dict(PASTE_SETTINGS)


def override_entries(parsed: Mapping[str, Any], settings: Any = None) -> list[str]:
    """"Label: value" entries for the settings a parsed infotext sets (PASTE_SETTINGS order); with a
    settings store, only those whose value differs from it and that it knows (as A1111's paste)."""
    entries: list[str] = []
    for label, key in PASTE_SETTINGS:
        raw = parsed.get(label)
        if raw is None or raw == "":
            continue
        value = setting_value(raw)
        if settings is not None and not _differs(settings, key, value):
            continue
        entries.append(f"{label}: {raw}")
    return entries


def drop_current(entries: Iterable[str], settings: Any) -> list[str]:
    """The entries whose value differs from `settings` (unparsable or unknown ones dropped)."""
    out = []
    for entry in entries or ():
        label, _, raw = str(entry).partition(":")
        key = _SETTING_OF_LABEL.get(label.strip())
        if key is not None and _differs(settings, key, setting_value(raw.strip())):
            out.append(entry)
    return out


def _differs(settings: Any, key: str, value: Any) -> bool:
    try:
        return settings.coerce(key, value) != settings.get(key)
    except ValueError:  # SettingsError: a setting this store lacks, or a value it would refuse
        return False


def override_settings_from_entries(entries: Iterable[str]) -> dict[str, Any]:
    """The box's "Label: value" entries as GenerationRequest.override_settings (setting -> typed value)."""
    out: dict[str, Any] = {}
    for entry in entries or ():
        label, sep, raw = str(entry).partition(":")
        key = _SETTING_OF_LABEL.get(label.strip())
        if not sep or key is None:
            raise UserInputError(f"Override settings: {entry!r} is not a known 'Label: value' entry",
                                 field="override_settings")
        out[key] = setting_value(raw.strip())
    return out
