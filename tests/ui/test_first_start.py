"""The browser path of a first start: page loads, Generate shows an image, the demo notice is visible.

With the trained demo model shipped (configs/demo-shapes) the newcomer's first picture must show what the
prompt says: a red shape on white, at the model's native 128x128 that the page now defaults to."""
from __future__ import annotations

import io
import urllib.request
from urllib.parse import urljoin

import pytest
from PIL import Image

from modules.pipelines.demo import SHAPES_FILE
from tests.helpers.browser import chromium_page, screenshot
from tests.helpers.server import start_server
from tests.ui.conftest import run_and_wait

pytestmark = [pytest.mark.browser, pytest.mark.server]


def set_number(page, elem: str, value: str) -> None:
    box = page.locator(f"{elem} input[type=number]")
    box.fill(value)
    box.press("Enter")


def gallery_image(page, server) -> Image.Image:
    src = page.get_attribute("#txt2img_gallery img", "src")
    assert src
    with urllib.request.urlopen(urljoin(server.url + "/", src), timeout=30) as response:
        return Image.open(io.BytesIO(response.read())).convert("RGB")


def test_generate_in_the_browser_on_a_fresh_install(tmp_path):
    trained = SHAPES_FILE.is_file()
    server = start_server(["--data-dir", str(tmp_path), "--api"], tmp_path)
    try:
        with chromium_page() as page:
            page.goto(server.url, wait_until="domcontentloaded")
            page.wait_for_selector("#txt2img_generate", timeout=30_000)
            notice = page.inner_text("#demo_notice")
            assert "demo model" in notice
            if trained:
                from tools.demo_model.evaluate import background_colour, colour_fractions

                assert "a red circle, white background" in notice  # the notice's example prompts
                assert page.input_value("#txt2img_width input[type=number]") == "128"  # its native size
                page.fill("#txt2img_prompt textarea", "a red circle, white background")
                set_number(page, "#txt2img_seed", "1000")
            else:
                page.fill("#txt2img_prompt textarea", "a lighthouse at dusk")
                # small and quick: the random demo model is tiny, the defaults would work too
                for elem, value in (("#txt2img_width", "64"), ("#txt2img_height", "64"), ("#txt2img_steps", "3")):
                    set_number(page, elem, value)
            # Wait for this run's message line, not for the first gallery <img>: a live preview shows there
            # while the job runs, and the infotext is only filled in with the final result.
            message = run_and_wait(page, "txt2img", timeout=90_000)
            assert "Time taken" in message, message
            screenshot(page, "first_start_txt2img")
            info = page.inner_text("#html_info_txt2img")
            image = gallery_image(page, server)
            if trained:
                assert "Steps: 20" in info and "Size: 128x128" in info
                assert image.size == (128, 128)
                assert colour_fractions(image)["red"] > 0.05 and background_colour(image) == "white"
            else:
                assert "Steps: 3" in info
    finally:
        server.stop()
