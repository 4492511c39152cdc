"""img2img and Extras in a real browser: send to img2img, inpaint with an uploaded and a drawn mask (only the
masked area changes), a broken init image that shows a message while the next Generate still works, an
Extras upscale, and an Extras step (dataset_tools' flipped copies) enabled in its accordion."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.helpers.browser import screenshot
from tests.ui.conftest import (
    choose,
    gradient_image,
    newest_png,
    number_value,
    on_the_shared_server,
    open_subtab,
    open_tab,
    run_and_wait,
    set_number,
    small_form,
    text_value,
)

pytestmark = [pytest.mark.browser, pytest.mark.server]


# These tests change no settings or model: they run on the session's shared server.
data_dir, server = on_the_shared_server()


@pytest.fixture(scope="module")
def source_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("sources") / "gradient.png"
    gradient_image(64).save(path)
    return path


def img2img_outputs(data_dir):
    return data_dir / "outputs" / "img2img-images"


def inpaint_settings(page) -> None:
    """64x64, 3 steps, full denoise, no mask blur: the masked area is repainted, the rest is kept as is."""
    for field, value in (("width", 64), ("height", 64), ("steps", 3), ("denoising_strength", 1),
                         ("mask_blur", 0)):
        set_number(page, f"img2img_{field}", value)
    page.fill("#img2img_prompt textarea", "a green field")
    page.fill("#img2img_seed input", "99")


def changed_pixels(result: Image.Image, source: Image.Image) -> np.ndarray:
    a = np.asarray(result.convert("RGB"), dtype=np.int16)
    b = np.asarray(source.convert("RGB"), dtype=np.int16)
    return np.abs(a - b).max(axis=2)


def test_send_to_img2img_carries_the_image_and_the_fields(page, data_dir):
    small_form(page, "txt2img", "a blue sphere", seed=777)
    assert "Time taken" in run_and_wait(page, "txt2img")
    page.click("#txt2img_send_to_img2img")
    page.wait_for_selector("#tab_img2img", state="visible")
    page.wait_for_selector("#img2img_image img", timeout=10_000)
    page.wait_for_function("() => document.querySelector('#img2img_seed input').value === '777'")
    assert text_value(page, "img2img_prompt") == "a blue sphere"
    assert number_value(page, "img2img_steps") == 3
    assert (number_value(page, "img2img_width"), number_value(page, "img2img_height")) == (64, 64)

    # The sent image is what img2img starts from.
    assert "Time taken" in run_and_wait(page, "img2img")
    info = page.inner_text("#html_info_img2img")
    assert "Denoising strength: 0.75" in info and "Seed: 777" in info
    with Image.open(newest_png(img2img_outputs(data_dir))) as out:
        assert out.size == (64, 64)
    screenshot(page, "img2img")


def test_inpaint_upload_changes_only_the_masked_area(page, data_dir, source_png, tmp_path):
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    mask_path = tmp_path / "mask.png"
    mask.save(mask_path)

    open_tab(page, "img2img")
    open_subtab(page, "img2img_inpaint_upload_tab")
    page.set_input_files("#img_inpaint_base input[type=file]", str(source_png))
    page.set_input_files("#img_inpaint_mask input[type=file]", str(mask_path))
    page.wait_for_selector("#img_inpaint_mask img")
    inpaint_settings(page)
    assert "Time taken" in run_and_wait(page, "img2img")

    with Image.open(newest_png(img2img_outputs(data_dir))) as out, Image.open(source_png) as src:
        diff = changed_pixels(out, src)
    keep = np.ones((64, 64), bool)
    keep[14:50, 14:50] = False  # a 2-pixel margin around the mask for the VAE's edge
    assert diff[keep].max() <= 2, "pixels outside the mask changed"
    assert diff[16:48, 16:48].mean() > 10, "the masked area did not change"


def test_inpaint_with_a_drawn_mask(page, data_dir, source_png):
    open_tab(page, "img2img")
    open_subtab(page, "img2img_inpaint_tab")
    page.set_input_files("#img2maskimg input[type=file]", str(source_png))
    # The upload prompt goes away once the picture is on the canvas; then it is fitted to it.
    page.wait_for_function("() => !document.querySelector('#img2maskimg').innerText.includes('Drop Image')")
    page.wait_for_timeout(300)
    canvas = page.locator("#img2maskimg canvas").first
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # One brush stroke across the middle of the picture.
    page.mouse.move(cx - 40, cy)
    page.mouse.down()
    for step in range(1, 9):
        page.mouse.move(cx - 40 + step * 10, cy, steps=2)
    page.mouse.up()
    page.wait_for_timeout(600)  # the editor commits the stroke to its layer
    inpaint_settings(page)
    assert "Time taken" in run_and_wait(page, "img2img")
    screenshot(page, "inpaint")

    with Image.open(newest_png(img2img_outputs(data_dir))) as out, Image.open(source_png) as src:
        diff = changed_pixels(out, src)
    assert diff[30:34, 28:36].mean() > 10, "the painted stroke was not repainted"
    for corner in (diff[:8, :8], diff[:8, -8:], diff[-8:, :8], diff[-8:, -8:]):
        assert corner.max() <= 2, "pixels far from the stroke changed"


def test_a_broken_init_image_shows_a_message_and_the_next_generate_works(page, source_png, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(source_png.read_bytes()[:120])  # a valid header, then the file just ends

    open_tab(page, "img2img")
    open_subtab(page, "img2img_img2img_tab")
    page.set_input_files("#img2img_image input[type=file]", str(broken))
    page.wait_for_timeout(500)
    for field, value in (("width", 64), ("height", 64), ("steps", 3)):
        set_number(page, f"img2img_{field}", value)
    message = run_and_wait(page, "img2img")
    assert "init_images" in message and "could not read the image" in message
    assert page.locator(".toast-wrap .toast-body, .error").count() == 0 or "Traceback" not in page.content()

    page.set_input_files("#img2img_image input[type=file]", str(source_png))
    page.wait_for_selector("#img2img_image img")
    assert "Time taken" in run_and_wait(page, "img2img")
    assert page.locator("#img2img_gallery img").count() >= 1


def test_extras_upscales_and_sends_on(page, data_dir, source_png):
    open_tab(page, "extras")
    page.set_input_files("#extras_image input[type=file]", str(source_png))
    page.wait_for_selector("#extras_image img")
    set_number(page, "extras_upscaling_resize", 2)
    choose(page, "extras_upscaler_1", "Lanczos")
    assert "Time taken" in run_and_wait(page, "extras", click="#extras_generate")
    assert "Postprocess upscaler: Lanczos" in page.inner_text("#html_info_extras")
    with Image.open(newest_png(data_dir / "outputs" / "extras-images")) as out:
        assert out.size == (128, 128)
    screenshot(page, "extras")
    page.click("#extras_send_to_img2img")
    page.wait_for_selector("#tab_img2img", state="visible")
    page.wait_for_selector("#img2img_image img")


def test_extras_steps_show_as_accordions_and_an_enabled_one_runs(page, data_dir, source_png):
    open_tab(page, "extras")
    for step in ("split_oversized_images", "auto_focal_point_crop", "auto_sized_crop", "create_flipped_copies",
                 "caption"):
        page.wait_for_selector(f"#extras_step_{step}", state="visible")
    page.set_input_files("#extras_image input[type=file]", str(source_png))
    page.wait_for_selector("#extras_image img")
    page.click("#extras_step_create_flipped_copies button")  # open the accordion
    page.check("#extras_step_create_flipped_copies_enable input[type=checkbox]")
    folder = data_dir / "outputs" / "extras-images"
    before = set(folder.rglob("*.png")) if folder.exists() else set()
    assert "Time taken" in run_and_wait(page, "extras", click="#extras_generate")
    new = sorted(set(folder.rglob("*.png")) - before)
    assert len(new) == 2  # the image and its mirror
    with Image.open(new[0]) as first, Image.open(new[1]) as second, Image.open(source_png) as source:
        assert np.array_equal(np.asarray(first.convert("RGB")), np.asarray(source.convert("RGB")))
        assert np.array_equal(np.asarray(second.convert("RGB")), np.asarray(source.convert("RGB"))[:, ::-1])
