"""ControlNet infotext as sd-webui-controlnet writes it, through the core writer and parser and back."""
from __future__ import annotations

from modules.images.infotext import param_pairs, quote


def test_format_matches_sd_webui_controlnet_and_round_trips(cn):
    unit = cn.units.ControlUnit(module="canny", model="control_v11p_sd15_canny", weight=1.0,
                                resize_mode="Crop and Resize", processor_res=512, threshold_a=100,
                                threshold_b=200)
    text = cn.infotext.format_unit(unit, "control_v11p_sd15_canny [d14c016b]")
    assert text == ("Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 1, "
                    "Resize Mode: Crop and Resize, Processor Res: 512, Threshold A: 100, Threshold B: 200, "
                    "Guidance Start: 0, "
                    "Guidance End: 1, Pixel Perfect: False, Control Mode: Balanced")
    line = f"Steps: 20, {cn.infotext.label(0)}: {quote(text)}, Seed: 1"
    assert line.startswith('Steps: 20, ControlNet 0: "Module: canny, Model:')
    pasted = dict(param_pairs(line))["ControlNet 0"]
    values = cn.infotext.parse_unit(pasted)
    assert values == {"module": "canny", "model": "control_v11p_sd15_canny [d14c016b]", "weight": 1.0,
                      "resize_mode": "Crop and Resize", "processor_res": 512, "threshold_a": 100.0,
                      "threshold_b": 200.0, "guidance_start": 0.0, "guidance_end": 1.0,
                      "pixel_perfect": False, "control_mode": "Balanced", "enabled": True}
    again = cn.units.unit_from_dict(values)
    assert cn.infotext.format_unit(again, values["model"]) == text


def test_fractions_print_short(cn):
    unit = cn.units.ControlUnit(weight=0.35, guidance_end=0.8, control_mode="My prompt is more important")
    text = cn.infotext.format_unit(unit, "m")
    assert "Weight: 0.35," in text and "Guidance End: 0.8," in text
    assert text.endswith("Control Mode: My prompt is more important")
