"""Units as data: sd-webui-controlnet's API dicts (names, int or text modes), the unchanged webuiapi client's
ControlNetUnit.to_dict(), and the UI section's flat list; bad values name the unit and the field."""
from __future__ import annotations

import base64
import io

import pytest
import webuiapi
from PIL import Image

from modules.types import UserInputError


def png_b64(color=(255, 0, 0), size=(8, 8)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_ui_fields_are_the_agreed_order(cn):
    assert cn.units.UI_FIELDS == ("enabled", "image", "use_img2img_input", "module", "model", "weight",
                                  "guidance_start", "guidance_end", "control_mode", "resize_mode",
                                  "pixel_perfect", "processor_res", "threshold_a", "threshold_b")
    assert cn.units.CONTROL_MODES[1] == "My prompt is more important"
    assert cn.units.RESIZE_MODES == ("Just Resize", "Crop and Resize", "Resize and Fill")


def test_api_dicts_with_ints_names_and_image_forms(cn):
    red, mask = png_b64(), png_b64((255, 255, 255))
    units = cn.units.parse_units([
        {"model": "control_v11p_sd15_canny [d14c016b]", "module": "canny", "image": red, "weight": "0.5",
         "resize_mode": 0, "control_mode": 2, "threshold_a": 100, "threshold_b": 200, "processor_res": 256},
        {"model": "m", "input_image": "data:image/png;base64," + red, "resize_mode": "Resize and Fill",
         "control_mode": "my prompt is more important", "guidance_start": 0.2, "guidance_end": 0.7},
        {"model": "m", "image": {"image": red, "mask": mask}, "enabled": False, "resize_mode": "Inner Fit"},
    ])
    first, second, third = units
    assert (first.weight, first.resize_mode) == (0.5, "Just Resize")
    assert first.control_mode == "ControlNet is more important"
    assert first.image.getpixel((0, 0)) == (255, 0, 0) and first.processor_res == 256
    assert second.image is not None and second.resize_mode == "Resize and Fill"
    assert second.control_mode == "My prompt is more important" and second.guidance_start == 0.2
    assert third.mask is not None and not third.enabled and not third.active
    assert third.resize_mode == "Crop and Resize"


def test_the_unchanged_webuiapi_client_unit_parses(cn):
    image = Image.new("RGB", (8, 8), (0, 0, 255))
    client_unit = webuiapi.ControlNetUnit(image=image, module="canny", model="control_tiny", weight=0.8,
                                          resize_mode="Crop and Resize", control_mode=1, pixel_perfect=True,
                                          guidance_end=0.9)
    [unit] = cn.units.parse_units([client_unit.to_dict()])
    assert unit.active and unit.module == "canny" and unit.model == "control_tiny" and unit.weight == 0.8
    assert unit.control_mode == "My prompt is more important"
    assert unit.pixel_perfect and unit.guidance_end == 0.9
    assert unit.image.getpixel((0, 0)) == (0, 0, 255) and unit.mask is None
    [blank] = cn.units.parse_units([webuiapi.ControlNetUnit(model="x").to_dict()])  # image "" = none given
    assert blank.image is None


def test_ui_flat_list_is_n_units_of_ui_fields(cn):
    fields = cn.units.UI_FIELDS
    one = [True, Image.new("RGB", (4, 4)), True, "none", "m", 1.5, 0, 1, "Balanced", "Just Resize", True, 512,
           -1, -1]
    two = [False, None, False, "none", "None", 1.0, 0, 1, "Balanced", "Crop and Resize", False, 512, -1, -1]
    units = cn.units.parse_units(one + two)
    assert len(one) == len(fields) and len(units) == 2
    assert units[0].use_img2img_input and units[0].weight == 1.5 and units[0].pixel_perfect
    assert not units[1].active
    with pytest.raises(UserInputError, match="not a multiple of 14"):
        cn.units.parse_units(one[:-1])


@pytest.mark.parametrize("bad, message", [
    ({"control_mode": 7}, "unit 0 control_mode: 7 is not one of"),
    ({"resize_mode": "Stretch"}, "unit 0 resize_mode: 'Stretch' is not one of"),
    ({"weight": "heavy"}, "unit 0 weight: expected a number"),
    ({"image": "not base64 at all!"}, "unit 0 image: not a base64-encoded image"),
    ({"guidance_start": 0.8, "guidance_end": 0.2}, "0 <= start <= end <= 1"),
])
def test_bad_values_name_the_unit_and_field(cn, bad, message):
    with pytest.raises(UserInputError, match=message):
        cn.units.parse_units([{"model": "m", **bad}])
