"""The ControlNet section in a real browser on one server: upload into unit 0, pick canny, press preview ->
the map appears; a weight-needing preprocessor without its file shows the path to place; enabled with a tiny
ControlNet (built from the demo model's UNet) txt2img generates and writes the unit into the infotext, and
pasting that infotext restores the unit."""
from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from tests.ui.conftest import (
    SHARED_CONTROLNET,
    choose,
    on_the_shared_server,
    run_and_wait,
    set_text,
    small_form,
)

pytestmark = [pytest.mark.browser, pytest.mark.server]

UNIT = "txt2img_controlnet_ControlNet-0"
MODEL_STEM = SHARED_CONTROLNET


# The shared server's data dir has a tiny ControlNet matching the demo checkpoint in models/ControlNet
# (written before start, tests/ui/conftest.py).
data_dir, server = on_the_shared_server()


@pytest.fixture(scope="module")
def drawing_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("cn") / "drawing.png"
    img = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(img).rectangle([16, 16, 48, 48], fill="black")
    img.save(path)
    return path


def open_unit(page, drawing_png, module: str) -> None:
    page.click("#txt2img_controlnet_section button")  # the section's accordion, closed at first
    page.wait_for_selector(f"#{UNIT}_input_image", state="visible")
    page.set_input_files(f"#{UNIT}_input_image input[type=file]", str(drawing_png))
    page.wait_for_selector(f"#{UNIT}_input_image img", state="visible")
    choose(page, f"{UNIT}_controlnet_preprocessor_dropdown", module)


def test_preview_shows_the_canny_map_and_a_missing_annotator_file_as_a_message(page, drawing_png, data_dir):
    open_unit(page, drawing_png, "canny")
    page.wait_for_selector(f"#{UNIT}_controlnet_threshold_A_slider", state="visible")
    assert "Low Threshold" in page.inner_text(f"#{UNIT}_controlnet_threshold_A_slider")
    page.click(f"#{UNIT}_controlnet_trigger_preprocessor")
    page.wait_for_selector(f"#{UNIT}_generated_image img", state="visible", timeout=30_000)
    assert page.is_checked(f"#{UNIT}_controlnet_preprocessor_preview_checkbox input")
    # Same unit, a weight-needing module whose file is not there: the message names the path to place.
    choose(page, f"{UNIT}_controlnet_preprocessor_dropdown", "depth_midas")
    page.click(f"#{UNIT}_controlnet_trigger_preprocessor")
    page.wait_for_selector(f"#{UNIT}_controlnet_preview_message :text('dpt_hybrid-midas-501f0c75.pt')",
                           timeout=30_000)
    message = page.inner_text(f"#{UNIT}_controlnet_preview_message")
    assert f"depth_midas needs {data_dir / 'models' / 'ControlNet' / 'annotators'}" in message, message


def test_enabled_unit_generates_with_the_model(page, drawing_png):
    small_form(page, "txt2img", "a square")
    open_unit(page, drawing_png, "canny")
    page.check(f"#{UNIT}_controlnet_enable_checkbox input")
    pick_model(page)
    log = run_and_wait(page, "txt2img")
    info = page.inner_text("#html_info_txt2img")
    assert 'ControlNet 0: "Module: canny, Model: control_demo_canny [' in info, (log, info)
    # Paste brings the unit back: another module first, then the infotext into the prompt box + Paste.
    choose(page, f"{UNIT}_controlnet_preprocessor_dropdown", "mlsd")
    set_text(page, "txt2img_prompt", info.replace("Threshold A: 100", "Threshold A: 42"))
    page.click("#txt2img_paste")
    page.wait_for_function("(id) => document.querySelector('#' + id + ' input').value === 'canny'",
                           arg=f"{UNIT}_controlnet_preprocessor_dropdown", timeout=30_000)
    page.wait_for_function("(id) => document.querySelector('#' + id + ' input[type=number]').value === '42'",
                           arg=f"{UNIT}_controlnet_threshold_A_slider", timeout=30_000)
    assert "Low Threshold" in page.inner_text(f"#{UNIT}_controlnet_threshold_A_slider")


def pick_model(page) -> None:
    """Pick the tiny model, listed by its title ("stem [hash]"), as a user does."""
    page.click(f"#{UNIT}_controlnet_model_dropdown input")
    page.click(f"li[role=option][aria-label^='{MODEL_STEM}']")
    assert page.input_value(f"#{UNIT}_controlnet_model_dropdown input").startswith(MODEL_STEM)
