"""The browser path of a first start: page loads, Generate shows an image, the demo notice is visible."""
from __future__ import annotations

import pytest

from tests.helpers.browser import chromium_page, screenshot
from tests.helpers.server import start_server

pytestmark = [pytest.mark.browser, pytest.mark.server]


def test_generate_in_the_browser_on_a_fresh_install(tmp_path):
    server = start_server(["--data-dir", str(tmp_path), "--api"], tmp_path)
    try:
        with chromium_page() as page:
            page.goto(server.url, wait_until="domcontentloaded")
            page.wait_for_selector("#txt2img_generate", timeout=30_000)
            assert "demo model" in page.inner_text("#demo_notice")
            page.fill("#txt2img_prompt textarea", "a lighthouse at dusk")
            # small and quick: the demo model is tiny, the defaults would work too
            for elem, value in (("#txt2img_width", "64"), ("#txt2img_height", "64"), ("#txt2img_steps", "3")):
                box = page.locator(f"{elem} input[type=number]")
                box.fill(value)
                box.press("Enter")
            page.click("#txt2img_generate")
            page.wait_for_selector("#txt2img_gallery img", timeout=60_000)
            screenshot(page, "first_start_txt2img")
            src = page.get_attribute("#txt2img_gallery img", "src")
            assert src
            assert "Steps: 3" in page.inner_text("#html_info_txt2img")
    finally:
        server.stop()
