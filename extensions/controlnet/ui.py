"""The ControlNet section of txt2img/img2img: N unit tabs laid out as sd-webui-controlnet users know them
(its element ids, its labels), whose values reach the extension as `request.extensions["controlnet"]["args"]`:
the units' fields flattened in `units.UI_FIELDS` order.

Only layout and thin handlers live here: the preview runs preprocessors.run_preprocessor, the model list comes
from the caller (the model library), the slider ranges from preprocessors.module_detail.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from modules.types import UserInputError

from .preprocessors import DetectorCache, Slider, module_detail, module_names, run_preprocessor
from .units import CONTROL_MODES, RESIZE_MODES, UI_FIELDS

# A hidden slider sends -1 ("the module's default"), as sd-webui-controlnet's do; the widest range of any
# module is the sliders' built-in range, so a value Gradio checks against either range passes.
HIDDEN = -1
RESOLUTION_MAX = 2048
THRESHOLD_MAX = 255


@dataclass(frozen=True)
class SectionServices:
    """What the section needs from the rest of the extension: model titles (`models(refresh)`, "None" first),
    where annotator weights live, and whether a missing one may be downloaded."""

    models: Callable[[bool], list[str]] = lambda refresh=False: ["None"]
    annotators_dir: Path = Path("models/ControlNet/annotators")
    allow_download: Callable[[], bool] = lambda: False
    cache: DetectorCache | None = None


def loaded_family(api) -> str | None:
    """'sd1' / 'sd2' / 'sdxl' of the loaded checkpoint (API 1.2), None when unknown or nothing is loaded."""
    loaded = getattr(api, "loaded_model", None)
    summary = loaded() if callable(loaded) else None
    return summary.family if summary is not None else None


def services_from_api(api, library=None) -> SectionServices:
    """The section's services from the extension API (and the model library, when the caller has one)."""
    from .preprocessors import ALLOW_DOWNLOAD_SETTING, annotators_dir_for

    annotators = annotators_dir_for(api)
    if library is None:
        from .models import ControlNetLibrary

        library = ControlNetLibrary(annotators.parent, api.root.resolve().parent.parent / "configs")

    def models(refresh: bool = False) -> list[str]:
        # Only the loaded checkpoint's family (an SD1 model cannot take an SDXL ControlNet); all when none.
        return ["None", *(f.title for f in library.list(family=loaded_family(api), refresh=refresh))]

    def allow_download() -> bool:
        try:
            return bool(api.setting(ALLOW_DOWNLOAD_SETTING))
        except (KeyError, ValueError):
            return False

    return SectionServices(models=models, annotators_dir=annotators, allow_download=allow_download,
                           cache=DetectorCache())


def build_section(is_img2img: bool, units: int, services: SectionServices | None = None) -> list[Any]:
    """Build the unit tabs (call inside a gradio layout); returns units * len(UI_FIELDS) input components."""
    services = services or SectionServices()
    tab = "img2img" if is_img2img else "txt2img"
    components: list[Any] = []
    with gr.Group(elem_id=f"{tab}_controlnet"):
        with gr.Tabs(elem_id=f"{tab}_controlnet_tabs"):
            for index in range(units):
                with gr.Tab(f"ControlNet Unit {index}", elem_classes=["cnet-unit-tab"], render_children=True):
                    fields = _unit(f"{tab}_controlnet_ControlNet-{index}", is_img2img, services)
                missing = [f for f in UI_FIELDS if f not in fields]
                if missing:
                    raise RuntimeError(f"ControlNet UI has no widget for unit field(s) {', '.join(missing)}")
                components.extend(fields[f] for f in UI_FIELDS)
    return components


def _unit(prefix: str, is_img2img: bool, services: SectionServices) -> dict[str, Any]:
    """One unit's widgets by UI_FIELDS name, wired to their handlers."""
    f: dict[str, Any] = {}
    with gr.Row(elem_classes=["cnet-image-row"]):
        f["image"] = gr.Image(label="Image", type="pil", image_mode=None, sources=["upload", "clipboard"],
                              elem_id=f"{prefix}_input_image", elem_classes=["cnet-image"], height=260)
        with gr.Column(visible=False, elem_classes=["cnet-generated-image-group"]) as preview_box:
            preview = gr.Image(label="Preprocessor Preview", type="pil", interactive=False, height=260,
                               elem_id=f"{prefix}_generated_image", elem_classes=["cnet-image"])
    message = gr.Markdown("", elem_id=f"{prefix}_controlnet_preview_message")
    with gr.Row(elem_classes=["controlnet_main_options"]):
        f["enabled"] = gr.Checkbox(label="Enable", value=False, elem_id=f"{prefix}_controlnet_enable_checkbox",
                                   elem_classes=["cnet-unit-enabled"])
        f["pixel_perfect"] = gr.Checkbox(label="Pixel Perfect", value=False,
                                         elem_id=f"{prefix}_controlnet_pixel_perfect_checkbox")
        allow_preview = gr.Checkbox(label="Allow Preview", value=False, elem_classes=["cnet-allow-preview"],
                                    elem_id=f"{prefix}_controlnet_preprocessor_preview_checkbox")
        # In txt2img there is no img2img input: the value stays False, hidden, so every tab sends the same fields.
        f["use_img2img_input"] = gr.Checkbox(label="Use the img2img input", value=False, visible=is_img2img,
                                             elem_id=f"{prefix}_controlnet_use_img2img_input_checkbox")
    with gr.Row(elem_classes=["controlnet_preprocessor_model", "controlnet_row"]):
        # Custom values: a pasted infotext arrives here as the whole unit ("Module: canny, Model: ..."), which
        # on_module_change spreads over the unit's widgets.
        f["module"] = gr.Dropdown(module_names(alias_names=True), value="none", label="Preprocessor",
                                  allow_custom_value=True, elem_id=f"{prefix}_controlnet_preprocessor_dropdown")
        run_button = gr.Button("💥 Preview", elem_id=f"{prefix}_controlnet_trigger_preprocessor",
                               elem_classes=["cnet-run-preprocessor"], size="sm", scale=0, min_width=90)
        f["model"] = gr.Dropdown(_model_titles(services, False), value="None", label="Model",
                                 allow_custom_value=True, elem_id=f"{prefix}_controlnet_model_dropdown")
        refresh = gr.Button("🔄", elem_id=f"{prefix}_controlnet_refresh_models", size="sm", scale=0, min_width=40)
    with gr.Row(elem_classes=["controlnet_weight_steps", "controlnet_row"]):
        f["weight"] = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Control Weight",
                                elem_id=f"{prefix}_controlnet_control_weight_slider")
        f["guidance_start"] = gr.Slider(0.0, 1.0, value=0.0, step=0.01, label="Starting Control Step",
                                        elem_id=f"{prefix}_controlnet_start_control_step_slider")
        f["guidance_end"] = gr.Slider(0.0, 1.0, value=1.0, step=0.01, label="Ending Control Step",
                                      elem_id=f"{prefix}_controlnet_ending_control_step_slider")
    with gr.Row():
        f["processor_res"] = gr.Slider(HIDDEN, RESOLUTION_MAX, value=HIDDEN, step=1, label="Preprocessor resolution",
                                       visible=False, elem_id=f"{prefix}_controlnet_preprocessor_resolution_slider")
        f["threshold_a"] = gr.Slider(HIDDEN, THRESHOLD_MAX, value=HIDDEN, step=1, label="Threshold A", visible=False,
                                     elem_id=f"{prefix}_controlnet_threshold_A_slider")
        f["threshold_b"] = gr.Slider(HIDDEN, THRESHOLD_MAX, value=HIDDEN, step=1, label="Threshold B", visible=False,
                                     elem_id=f"{prefix}_controlnet_threshold_B_slider")
    f["control_mode"] = gr.Radio(list(CONTROL_MODES), value=CONTROL_MODES[0], label="Control Mode",
                                 elem_id=f"{prefix}_controlnet_control_mode_radio")
    f["resize_mode"] = gr.Radio(list(RESIZE_MODES), value="Crop and Resize", label="Resize Mode",
                                elem_id=f"{prefix}_controlnet_resize_mode_radio")

    pasted = gr.State(False)  # the next module change comes from a paste: keep the pasted slider values
    f["module"].change(on_module_change, [f["module"], f["pixel_perfect"], pasted],
                       [*(f[name] for name in PASTE_OUTPUTS), pasted], show_progress="hidden")
    f["pixel_perfect"].change(resolution_visibility, [f["module"], f["pixel_perfect"]], [f["processor_res"]],
                              show_progress="hidden")
    allow_preview.change(lambda allowed: gr.update(visible=bool(allowed)), [allow_preview], [preview_box],
                         show_progress="hidden")
    refresh.click(lambda current: gr.update(choices=_model_titles(services, True), value=current),
                  [f["model"]], [f["model"]], show_progress="hidden")

    def on_preview(image, module, res, a, b, pixel_perfect):
        result, text = preview_map(image, module, res, a, b, pixel_perfect, services)
        shown = result is not None
        return (gr.update(value=result) if shown else gr.update(), gr.update(visible=True) if shown else gr.update(),
                gr.update(value=True) if shown else gr.update(), text)

    run_button.click(on_preview, [f["image"], f["module"], f["processor_res"], f["threshold_a"], f["threshold_b"],
                                  f["pixel_perfect"]], [preview, preview_box, allow_preview, message],
                     show_progress="minimal")
    return f


def preview_map(image: Image.Image | None, module: str, res: float | None, a: float | None, b: float | None,
                pixel_perfect: bool, services: SectionServices) -> tuple[Image.Image | None, str]:
    """(the detected map, "") or (None, the message to show): a bad input never raises into the page."""
    if image is None:
        return None, "Upload an image into this unit first."
    if pixel_perfect:
        # The generation's size is not known here; the picture's own short side is what pixel perfect
        # gives for a same-size generation.
        res = min(image.size)
    try:
        return run_preprocessor(module, image.convert("RGB") if image.mode not in ("RGB", "RGBA") else image,
                                res, a, b, annotators_dir=services.annotators_dir,
                                allow_download=services.allow_download(), cache=services.cache), ""
    except UserInputError as exc:
        return None, f"**{exc}**"
    except Exception as exc:  # a broken annotator must not take the page down; the log has the rest
        return None, f"**Preprocessor {module} failed: {type(exc).__name__}: {exc}**"


# The unit widgets the module dropdown's change handler may set, in its outputs' order (then the state).
PASTE_OUTPUTS: tuple[str, ...] = ("module", "enabled", "model", "weight", "guidance_start", "guidance_end",
                                  "control_mode", "resize_mode", "pixel_perfect", "processor_res", "threshold_a",
                                  "threshold_b")


def paste_arg(unit: int) -> int:
    """The section component index a unit's infotext value (`ControlNet <unit>: "Module: ..."`) is pasted into:
    its module dropdown (api.add_infotext_field(label, arg=paste_arg(unit)))."""
    return unit * len(UI_FIELDS) + UI_FIELDS.index("module")


def is_pasted_unit(value: Any) -> bool:
    return isinstance(value, str) and value.lstrip('" ').startswith("Module:")


def on_module_change(module: str, pixel_perfect: bool, pasted: bool) -> list:
    """A picked module sets the sliders to its labels, ranges and defaults; a pasted unit infotext sets every
    unit widget it names (and then the module's own change keeps those pasted slider values)."""
    if is_pasted_unit(module):
        return [*pasted_unit_updates(module), True]
    return [*([gr.skip()] * (len(PASTE_OUTPUTS) - 3)), *slider_updates(module, pixel_perfect, keep_values=pasted),
            False]


def pasted_unit_updates(text: str) -> list:
    """One update per PASTE_OUTPUTS name from a unit's infotext value; names it lacks are left alone."""
    from .infotext import parse_unit

    try:
        values = parse_unit(text)
    except (UserInputError, ValueError):
        return [gr.update(value="none"), *([gr.skip()] * (len(PASTE_OUTPUTS) - 1))]
    module = values.get("module", "none")
    try:
        values["module"] = module_detail(module).label
        spec = module_detail(module)
    except UserInputError:
        values["module"], spec = module, None
    updates = []
    for name in PASTE_OUTPUTS:
        if name not in values:
            updates.append(gr.skip())
        elif name in ("processor_res", "threshold_a", "threshold_b") and spec is not None:
            slider = {"processor_res": spec.resolution, "threshold_a": spec.threshold_a,
                      "threshold_b": spec.threshold_b}[name]
            updates.append(_shown(slider, value=values[name], visible=not (name == "processor_res" and
                                                                            values.get("pixel_perfect")))
                           if slider is not None and values[name] >= 0 else _hidden())
        else:
            updates.append(gr.update(value=values[name]))
    return updates


def slider_updates(module: str, pixel_perfect: bool = False, keep_values: bool = False) -> list[dict]:
    """Gradio updates for (resolution, threshold A, threshold B): the module's labels, ranges and defaults,
    hidden (value -1) where the module has no such slider; the resolution hides under pixel perfect.
    `keep_values`: ranges and labels only (the values were just pasted)."""
    try:
        spec = module_detail(module)
    except UserInputError:
        return [_hidden(), _hidden(), _hidden()]
    value = None if keep_values else ...
    resolution = (_shown(spec.resolution, value=value, visible=not pixel_perfect) if spec.resolution
                  else _hidden())
    return [resolution, _shown(spec.threshold_a, value=value) if spec.threshold_a else _hidden(),
            _shown(spec.threshold_b, value=value) if spec.threshold_b else _hidden()]


def resolution_visibility(module: str, pixel_perfect: bool) -> dict:
    try:
        has_resolution = module_detail(module).resolution is not None
    except UserInputError:
        has_resolution = False
    return gr.update(visible=has_resolution and not pixel_perfect)


def _shown(slider: Slider, value: Any = ..., visible: bool = True) -> dict:
    """The slider's update; `value` ... is its default, None leaves the current value."""
    update = gr.update(label=slider.label, minimum=slider.minimum, maximum=slider.maximum, step=slider.step,
                       visible=visible)
    if value is not None:
        update["value"] = slider.value if value is ... else value
    return update


def _hidden() -> dict:
    return gr.update(visible=False, minimum=HIDDEN, value=HIDDEN)


def _model_titles(services: SectionServices, refresh: bool) -> list[str]:
    try:
        titles = list(services.models(refresh))
    except Exception:  # an unreadable folder leaves the list at "None" rather than breaking the page
        titles = []
    return titles if "None" in titles else ["None", *titles]
