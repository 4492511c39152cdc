"""Settings in a real browser: Apply survives a restart (config.json read by a second server), quicksettings,
--theme and user.css there, the Defaults page (ui-config.json) with Reload UI, and Sysinfo."""
from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers.browser import screenshot
from tests.helpers.server import start_server
from tests.ui.conftest import number_value, open_page, open_subtab, open_tab, set_number

pytestmark = [pytest.mark.browser, pytest.mark.server]

USER_CSS = "#txt2img_generate { outline: 3px solid rgb(1, 2, 3); }\n"


def apply_settings(page) -> str:
    page.click("#settings_submit")
    page.wait_for_selector("#settings_result .gen-note, #settings_result .gen-error")
    return page.inner_text("#settings_result")


def test_applied_settings_survive_a_restart(page, data_dir, tmp_path):
    # Applied on the module's server; "restarted" is a second server on a data dir holding the config.json
    # it wrote (one server start less than stopping and starting again: ~20 s on the shared box).
    open_tab(page, "settings")
    open_subtab(page, "settings_saving")
    set_number(page, "setting_jpeg_quality", 93)
    page.uncheck("#setting_grid_save input[type=checkbox]")
    open_subtab(page, "settings_ui")
    page.click("#setting_quicksettings_list input")
    page.keyboard.type("CLIP_stop_at_last_layers")
    page.keyboard.press("Enter")
    page.locator("#setting_quicksettings_list input").blur()  # close the option list
    message = apply_settings(page)
    assert "3 settings changed" in message, message
    screenshot(page, "settings")
    stored = json.loads((data_dir / "config.json").read_text())
    assert stored["jpeg_quality"] == 93 and stored["grid_save"] is False
    assert "CLIP_stop_at_last_layers" in stored["quicksettings_list"]

    restarted = tmp_path / "data"
    restarted.mkdir()
    shutil.copy2(data_dir / "config.json", restarted / "config.json")
    (restarted / "user.css").write_text(USER_CSS)
    second = start_server(["--data-dir", str(restarted), "--no-download-sd-model", "--theme", "dark"],
                          tmp_path)
    try:
        open_page(page, second.url)
        # Clip skip is now a quicksetting in the top bar.
        assert page.locator("#quicksettings #setting_CLIP_stop_at_last_layers").count() == 1
        # --theme dark and the user's CSS apply.
        page.wait_for_function("() => document.body.classList.contains('dark')")
        outline = page.evaluate("() => getComputedStyle(document.querySelector('#txt2img_generate')).outlineColor")
        assert outline == "rgb(1, 2, 3)"
        screenshot(page, "txt2img_dark")
        open_tab(page, "settings")
        open_subtab(page, "settings_saving")
        assert number_value(page, "setting_jpeg_quality") == 93
        assert not page.is_checked("#setting_grid_save input[type=checkbox]")
    finally:
        second.stop()


def test_defaults_page_writes_ui_config_and_reload_shows_it(page, data_dir):
    set_number(page, "txt2img_steps", 33)
    open_tab(page, "settings")
    open_subtab(page, "settings_defaults")
    page.click("#ui_defaults_view")
    page.wait_for_function("() => document.querySelector('#ui_defaults_review')?.innerText.includes('txt2img/Sampling steps')")
    page.click("#ui_defaults_apply")
    page.wait_for_function("() => document.querySelector('#ui_defaults_review')?.innerText.includes('Wrote')")
    stored = json.loads((data_dir / "ui-config.json").read_text())
    assert stored["txt2img/Sampling steps/value"] == 33

    page.click("#settings_restart_gradio")  # Reload UI
    page.wait_for_selector("#txt2img_generate", state="visible")
    page.wait_for_function("() => document.querySelector('#txt2img_steps input[type=number]').value === '33'")


def test_sysinfo_lists_versions(page):
    open_tab(page, "settings")
    open_subtab(page, "settings_sysinfo")
    page.click("#settings_sysinfo_show")
    page.wait_for_function("() => document.querySelector('#settings_sysinfo_text')?.innerText.includes('diffusers')")
    assert "auth" not in page.inner_text("#settings_sysinfo_text").lower()
