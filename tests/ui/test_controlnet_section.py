"""The ControlNet section (extensions/controlnet/ui.py) built in gradio Blocks without a browser: per unit the
fields in UI_FIELDS order with sd-webui-controlnet's element ids, sliders relabelled per module, and the
preview handler giving the map or a message (never an exception)."""
from __future__ import annotations

import importlib

import gradio as gr
import numpy as np
import pytest
from PIL import Image, ImageDraw

from modules.extensions.loader import import_extension_package, package_name
from modules.paths import BUILTIN_EXTENSIONS_DIR

import_extension_package("controlnet", BUILTIN_EXTENSIONS_DIR / "controlnet")
ui = importlib.import_module(f"{package_name('controlnet')}.ui")
units = importlib.import_module(f"{package_name('controlnet')}.units")
pp = importlib.import_module(f"{package_name('controlnet')}.preprocessors")

EXPECTED_TYPES = {"enabled": gr.Checkbox, "image": gr.Image, "use_img2img_input": gr.Checkbox,
                  "module": gr.Dropdown, "model": gr.Dropdown, "weight": gr.Slider, "guidance_start": gr.Slider,
                  "guidance_end": gr.Slider, "control_mode": gr.Radio, "resize_mode": gr.Radio,
                  "pixel_perfect": gr.Checkbox, "processor_res": gr.Slider, "threshold_a": gr.Slider,
                  "threshold_b": gr.Slider}


def build(is_img2img: bool, n: int, services=None):
    with gr.Blocks() as demo:
        components = ui.build_section(is_img2img, n, services)
    return demo, components


@pytest.fixture(scope="module")
def txt2img():
    return build(False, 2, ui.SectionServices(models=lambda refresh=False: ["None", "control_tiny [abcd1234]"]))


def test_components_follow_ui_fields_per_unit(txt2img):
    _, components = txt2img
    assert len(components) == 2 * len(units.UI_FIELDS)
    for unit in range(2):
        for offset, field in enumerate(units.UI_FIELDS):
            component = components[unit * len(units.UI_FIELDS) + offset]
            assert isinstance(component, EXPECTED_TYPES[field]), (unit, field, type(component))
    first = dict(zip(units.UI_FIELDS, components[:len(units.UI_FIELDS)]))
    assert first["module"].elem_id == "txt2img_controlnet_ControlNet-0_controlnet_preprocessor_dropdown"
    assert first["image"].elem_id == "txt2img_controlnet_ControlNet-0_input_image"
    assert first["enabled"].elem_id == "txt2img_controlnet_ControlNet-0_controlnet_enable_checkbox"
    assert components[len(units.UI_FIELDS)].elem_id == "txt2img_controlnet_ControlNet-1_controlnet_enable_checkbox"
    assert first["model"].choices[1][0] == "control_tiny [abcd1234]"
    assert first["use_img2img_input"].visible is False  # txt2img: kept for the field order, never shown
    assert [c[0] for c in first["control_mode"].choices] == list(units.CONTROL_MODES)
    assert [c[0] for c in first["resize_mode"].choices] == list(units.RESIZE_MODES)


def test_default_values_parse_as_disabled_units(txt2img):
    _, components = txt2img
    parsed = units.parse_units([c.value for c in components])
    assert len(parsed) == 2 and not any(u.enabled for u in parsed)
    assert parsed[0].module == "none" and parsed[0].processor_res == -1 and parsed[0].resize_mode == "Crop and Resize"


def test_img2img_shows_the_use_img2img_input_checkbox():
    _, components = build(True, 1)
    fields = dict(zip(units.UI_FIELDS, components))
    assert fields["use_img2img_input"].visible is True
    assert fields["module"].elem_id == "img2img_controlnet_ControlNet-0_controlnet_preprocessor_dropdown"


def test_sliders_follow_the_module():
    res, a, b = ui.slider_updates("canny")
    assert (res["label"], res["minimum"], res["maximum"], res["value"], res["visible"]) == \
        ("Resolution", 64, 2048, 512, True)
    assert (a["label"], a["value"], b["label"], b["value"]) == ("Low Threshold", 100, "High Threshold", 200)
    res, a, b = ui.slider_updates("tile_resample")
    assert res["visible"] is False and res["value"] == -1
    assert (a["label"], a["minimum"], a["maximum"], a["step"]) == ("Down Sampling Rate", 1.0, 8.0, 0.01)
    assert b["visible"] is False and b["value"] == -1
    assert ui.slider_updates("canny", pixel_perfect=True)[0]["visible"] is False
    assert [u["visible"] for u in ui.slider_updates("no such module")] == [False, False, False]


def test_preview_gives_the_map_or_a_message(tmp_path):
    services = ui.SectionServices(annotators_dir=tmp_path)
    img = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(img).rectangle([16, 16, 48, 48], fill="black")
    result, message = ui.preview_map(img, "canny", 64, 100, 200, False, services)
    expected = pp.run_preprocessor("canny", img, 64, 100, 200, annotators_dir=tmp_path)
    assert message == "" and np.array_equal(np.asarray(result), np.asarray(expected))
    assert ui.preview_map(None, "canny", 64, 100, 200, False, services) == \
        (None, "Upload an image into this unit first.")
    result, message = ui.preview_map(img, "depth_midas", 64, -1, -1, False, services)
    assert result is None and str(tmp_path / "dpt_hybrid-midas-501f0c75.pt") in message
    result, message = ui.preview_map(img, "cany", 64, -1, -1, False, services)
    assert result is None and "unknown ControlNet preprocessor 'cany'" in message


PASTED = ('Module: canny, Model: control_x [abcd1234], Weight: 0.5, Resize Mode: Just Resize, Processor Res: 256, '
          'Threshold A: 50, Threshold B: 150, Guidance Start: 0.1, Guidance End: 0.9, Pixel Perfect: False, '
          'Control Mode: ControlNet is more important')


def test_a_pasted_unit_infotext_fills_the_units_widgets():
    assert ui.paste_arg(0) == units.UI_FIELDS.index("module")
    assert ui.paste_arg(1) == len(units.UI_FIELDS) + units.UI_FIELDS.index("module")
    *updates, pasted = ui.on_module_change(PASTED, False, False)
    got = dict(zip(ui.PASTE_OUTPUTS, updates))
    assert pasted is True
    assert {k: got[k]["value"] for k in ("module", "enabled", "model", "weight", "resize_mode", "guidance_start",
                                         "guidance_end", "pixel_perfect", "control_mode")} == {
        "module": "canny", "enabled": True, "model": "control_x [abcd1234]", "weight": 0.5,
        "resize_mode": "Just Resize", "guidance_start": 0.1, "guidance_end": 0.9, "pixel_perfect": False,
        "control_mode": "ControlNet is more important"}
    assert (got["processor_res"]["value"], got["processor_res"]["label"]) == (256, "Resolution")
    assert (got["threshold_a"]["value"], got["threshold_a"]["label"]) == (50, "Low Threshold")
    assert got["threshold_b"]["value"] == 150
    # The module set by the paste changes the dropdown again: ranges follow it, the pasted values stay.
    *updates, pasted = ui.on_module_change("canny", False, True)
    sliders = updates[-3:]
    assert pasted is False and all("value" not in s and s["visible"] for s in sliders)
    assert sliders[1]["label"] == "Low Threshold"
    # A module the user picks resets the sliders to its defaults.
    *updates, _ = ui.on_module_change("mlsd", False, False)
    assert [s["value"] for s in updates[-3:]] == [512, 0.1, 0.1]
