"""txt2img in a real browser against the real server (demo checkpoint): page load, Generate, paste
parameters, PNG Info and send to txt2img, interrupt and a screenshot of every tab (ids: test_page_ids.py)."""
from __future__ import annotations

import contextlib

import json
import time

import pytest
from PIL import Image

from tests.helpers.browser import ARTIFACTS, screenshot
from tests.ui.conftest import (
    log_stamp,
    number_value,
    on_the_shared_server,
    open_page,
    open_tab,
    run_and_wait,
    set_number,
    set_text,
    small_form,
    text_value,
    wait_message,
)

pytestmark = [pytest.mark.browser, pytest.mark.server]


# These tests change no settings or model: they run on the session's shared server.
data_dir, server = on_the_shared_server()


PASTED = ("a lighthouse at dusk\nNegative prompt: fog\n"
          "Steps: 4, Sampler: Euler a, Schedule type: Automatic, CFG scale: 5, Seed: 4321, Size: 64x72")


def test_page_loads_and_its_time_is_recorded(browser_page, server):
    times = [open_page(browser_page, server.url) for _ in range(3)]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "ui_page_load.json").write_text(json.dumps({"seconds": times}, indent=1))
    print(f"page load: {', '.join(f'{t:.2f}' for t in times)} s")
    # Speed is measured in bench/bench_page_load.py (the 1.5 s goal lives there, with the renderer's CPU
    # seconds); here only a hang fails: open_page waits 30 s for Generate. A 10 s bound on the best of three
    # failed at load average 12 (14-18 s) with nothing wrong, so no wall-clock bound is asserted.
    assert len(times) == 3 and all(t > 0 for t in times), times


def test_generate_shows_the_image_and_saves_a_png_with_parameters(page, data_dir):
    small_form(page, "txt2img", "a red cube", seed=1234)
    message = run_and_wait(page, "txt2img")
    assert "Time taken" in message
    assert page.locator("#txt2img_gallery img").count() >= 1
    info = page.inner_text("#html_info_txt2img")
    assert "Steps: 3" in info and "Seed: 1234" in info and "Size: 64x64" in info
    # newest last: other modules on the shared server save seed-1234 PNGs here too
    pngs = sorted((p for p in (data_dir / "outputs" / "txt2img-images").rglob("*.png") if "1234" in p.name),
                  key=lambda p: p.stat().st_mtime)
    assert pngs, "no PNG saved"
    with Image.open(pngs[-1]) as saved:
        assert saved.size == (64, 64)
        assert "a red cube" in saved.info["parameters"] and "Seed: 1234" in saved.info["parameters"]
    # The counter counts the prompt with the model's tokenizer.
    assert page.inner_text("#txt2img_token_counter").strip().endswith("/75")
    screenshot(page, "txt2img")


def test_paste_parameters_then_png_info_sends_them_back(page, data_dir):
    # 1. An infotext in the prompt box + Paste fills every field.
    set_text(page, "txt2img_prompt", PASTED)
    page.click("#txt2img_paste")
    page.wait_for_function("() => document.querySelector('#txt2img_seed input').value === '4321'")
    assert text_value(page, "txt2img_prompt") == "a lighthouse at dusk"
    assert text_value(page, "txt2img_neg_prompt") == "fog"
    assert (number_value(page, "txt2img_steps"), number_value(page, "txt2img_width"),
            number_value(page, "txt2img_height"), number_value(page, "txt2img_cfg_scale")) == (4, 64, 72, 5)
    assert page.input_value("#txt2img_sampling input") == "Euler a"

    # 2. Ctrl+Enter generates.
    before = log_stamp(page, "txt2img")
    page.locator("#txt2img_prompt textarea").press("Control+Enter")
    assert "Time taken" in wait_message(page, "txt2img", before)
    png = next(p for p in (data_dir / "outputs" / "txt2img-images").rglob("*4321*.png"))

    # 3. A fresh page: PNG Info shows the parameters of that file...
    open_page(page, page.url)
    open_tab(page, "pnginfo")
    page.set_input_files("#pnginfo_image input[type=file]", str(png))
    page.wait_for_function("() => document.querySelector('#pnginfo_html_info').innerText.includes('Seed: 4321')")
    text = page.inner_text("#pnginfo_html_info")
    assert "a lighthouse at dusk" in text and "Steps: 4" in text and "Sampler: Euler a" in text
    screenshot(page, "pnginfo")

    # 4. ... and "Send to txt2img" restores prompt, seed, steps, sampler and size.
    page.click("#pnginfo_send_to_txt2img")
    page.wait_for_selector("#tab_txt2img", state="visible")
    page.wait_for_function("() => document.querySelector('#txt2img_seed input').value === '4321'")
    assert text_value(page, "txt2img_prompt") == "a lighthouse at dusk"
    assert number_value(page, "txt2img_steps") == 4
    assert (number_value(page, "txt2img_width"), number_value(page, "txt2img_height")) == (64, 72)
    assert page.input_value("#txt2img_sampling input") == "Euler a"


def test_interrupt_stops_a_long_run(page):
    try:
        interrupt_a_long_run(page)
    except Exception:
        # A failure must not leave the shared server on a minutes-long run: the next tests' page loads
        # would time out behind it (seen in a full run: two setup errors after one failure here). Stop it
        # and wait until the job has ended.
        with contextlib.suppress(Exception):
            before = log_stamp(page, "txt2img")
            page.click("#txt2img_interrupt", timeout=10_000)
            wait_message(page, "txt2img", before, timeout=120_000)
        raise


def interrupt_a_long_run(page):
    # ~150 steps x 20 images at 256x256: minutes on the demo model if nothing stops it.
    small_form(page, "txt2img", "a long run")
    for field, value in (("width", 256), ("height", 256), ("steps", 150), ("batch_count", 20)):
        set_number(page, f"txt2img_{field}", value)
    before = log_stamp(page, "txt2img")
    page.click("#txt2img_generate")
    # 90 s, not 30: the run's torch threads take both of CI's 2 cores, and a full run once saw the bar
    # found visible yet the wait time out, the page's answers held up behind the sampler.
    page.wait_for_selector("#txt2img_progress .progress-bar", timeout=90_000)
    # Live preview (every 5 steps by default) over the gallery, and the ETA in the progress line.
    page.wait_for_selector("#txt2img_live_preview .live-preview img", timeout=90_000)
    box = page.locator("#txt2img_live_preview .live-preview").bounding_box()
    gallery = page.locator("#txt2img_gallery").bounding_box()
    assert box and gallery and abs(box["x"] - gallery["x"]) < 20 and box["y"] >= gallery["y"] - 20, (box, gallery)
    page.wait_for_function("() => document.querySelector('#txt2img_progress').innerText.includes('ETA')",
                           timeout=60_000)
    assert "step" in page.inner_text("#txt2img_progress")
    screenshot(page, "txt2img_progress")
    pressed = time.perf_counter()
    page.click("#txt2img_interrupt")
    message = wait_message(page, "txt2img", before, timeout=90_000)
    # The whole run is ~3000 steps at 256x256 (10+ minutes here); one step plus a decode is the most an
    # interrupt may wait. 45 s leaves room for a loaded CI box and still fails when only the batch stops.
    assert time.perf_counter() - pressed < 45
    assert "Interrupted" in message
    # Esc does the same while a job runs (A1111's shortcut).
    before = log_stamp(page, "txt2img")
    page.click("#txt2img_generate")
    page.wait_for_selector("#txt2img_progress .progress-bar", timeout=90_000)
    page.locator("#txt2img_prompt textarea").press("Escape")
    assert "Interrupted" in wait_message(page, "txt2img", before, timeout=90_000)
    # The button is not stuck: the next small run works.
    small_form(page, "txt2img", "after the interrupt")
    set_number(page, "txt2img_batch_count", 1)
    assert "Time taken" in run_and_wait(page, "txt2img")


def test_styles_save_and_apply(page, data_dir):
    set_text(page, "txt2img_prompt", "masterpiece, {prompt}")
    page.click("#txt2img_style_create")
    set_text(page, "txt2img_style_name", "quality")
    page.click("#txt2img_style_save")
    page.wait_for_function("() => document.querySelector('#txt2img_style_message')?.innerText.includes('Saved')")
    assert "quality" in (data_dir / "styles.csv").read_text()

    set_text(page, "txt2img_prompt", "a fox")
    page.click("#txt2img_styles input")
    page.keyboard.type("quality")
    page.keyboard.press("Enter")
    page.locator("#txt2img_styles input").blur()
    page.click("#txt2img_style_apply")
    page.wait_for_function("() => document.querySelector('#txt2img_prompt textarea').value === 'masterpiece, a fox'")


def test_every_tab_renders_without_overflow(page):
    for tab in ("txt2img", "img2img", "extras", "pnginfo", "train", "settings", "extensions"):
        open_tab(page, tab)
        # Nothing wider than the window: no control is cut off at the right edge.
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{tab} overflows by {overflow}px"
        if tab not in ("txt2img", "pnginfo"):  # those two are shot with content in the tests above
            screenshot(page, tab)


def test_events_that_show_no_progress_keep_one_loading_status(server):
    """Gradio's page re-applies the loading status of every component any event ever updated, on every status
    message of every later event (each by a walk of the whole layout): the page-load event's 137 outputs made
    each Generate click spend seconds in the browser. Events with hidden progress keep one status target."""
    import urllib.request

    with urllib.request.urlopen(server.url + "/config", timeout=30) as resp:
        config = json.loads(resp.read())
    heavy = []
    for dep in config["dependencies"]:
        targets = dep.get("show_progress_on") or dep["outputs"]
        if dep.get("show_progress") == "hidden" and len(targets) > 4:
            heavy.append((dep["id"], [event for _, event in dep["targets"]], len(targets)))
    assert not heavy, f"hidden-progress events with many status targets (id, events, count): {heavy[:5]}"
    loads = [dep for dep in config["dependencies"] if any(event == "load" for _, event in dep["targets"])]
    assert loads and all(len(dep.get("show_progress_on") or dep["outputs"]) <= 4 for dep in loads)
