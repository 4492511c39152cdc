"""What a page load costs the browser, as structure (speed itself is measured in bench/bench_page_load.py):
Gradio's front end walks the whole component tree once per output of every event that has run, at every
status change of any event, so the page-load event must carry few outputs; the Settings widgets still show
values stored since start-up (their refresh runs only when those values changed)."""
from __future__ import annotations

import json
import urllib.request

import pytest

from tests.ui.conftest import number_value, on_the_shared_server, open_page, open_subtab, open_tab, set_number

pytestmark = [pytest.mark.browser, pytest.mark.server]

data_dir, server = on_the_shared_server()

# The top bar (checkpoint, notice), the Extensions tab's list and one stamp per stamped refresh; was 146
# (every Settings widget and every ui-config.json default).
MAX_LOAD_OUTPUTS = 12


def page_config(url: str) -> dict:
    with urllib.request.urlopen(url + "/config", timeout=60) as resp:
        return json.loads(resp.read())


def test_the_page_load_event_has_few_outputs(server):
    config = page_config(server.url)
    load_outputs = [len(dep["outputs"]) for dep in config["dependencies"]
                    if any(trigger == "load" for _, trigger in dep["targets"])]
    assert load_outputs, "no page-load event"
    assert sum(load_outputs) <= MAX_LOAD_OUTPUTS, load_outputs


def test_a_fresh_page_shows_settings_applied_since_start_up(page):
    open_tab(page, "settings")
    open_subtab(page, "settings_saving")
    before = number_value(page, "setting_jpeg_quality")
    changed = 91 if before != 91 else 92
    try:
        set_number(page, "setting_jpeg_quality", changed)
        page.click("#settings_submit")
        page.wait_for_function("() => document.querySelector('#settings_result')?.innerText.includes('changed')",
                               timeout=30_000)
        open_page(page, page.url)
        open_tab(page, "settings")
        open_subtab(page, "settings_saving")
        page.wait_for_function(
            f"() => document.querySelector('#setting_jpeg_quality input[type=number]')?.value === '{changed}'",
            timeout=30_000)
    finally:
        # The shared server's other modules expect the default back.
        open_page(page, page.url)
        open_tab(page, "settings")
        open_subtab(page, "settings_saving")
        set_number(page, "setting_jpeg_quality", before)
        page.click("#settings_submit")
        page.wait_for_function("() => document.querySelector('#settings_result')?.innerText.includes('changed')",
                               timeout=30_000)
