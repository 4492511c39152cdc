"""A1111-style extensions, written as real ones are and cloned into <data>/extensions/ with git as a user
does, work on one real server (`--api --shout-level 3`, the flag an extension's preload.py adds), in the
browser and through the HTTP API (the webuiapi client): an always-on script, a preload flag +
on_ui_settings option + on_app_started route, a selectable Script, a Gradio 3 UI placed after
txt2img_width, a javascript/ file. The built-in X/Y/Z plot, Prompt matrix and Prompts from textbox are
driven on the same server.
"""
from __future__ import annotations

import json

import pytest
import requests

from modules.images.infotext import parse_infotext
from tests.helpers.a1111_samples import GOOD
from tests.helpers.extension_repos import clone, make_repo
from tests.helpers.server import start_server
from tests.ui.conftest import (
    choose,
    open_page,
    open_subtab,
    open_tab,
    run_and_wait,
    set_number,
    set_text,
    small_form,
)

pytestmark = [pytest.mark.browser, pytest.mark.server]

SERVER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SMALL = {"width": 64, "height": 64, "steps": 1, "seed": 11}
XYZ = "script_txt2img_xyz_plot"  # A1111's element id prefix of the X/Y/Z plot's controls
NEXT_ID_AFTER = """(id) => {
  const el = document.getElementById(id);
  const later = [...document.querySelectorAll("[id]")].filter(
      (other) => !el.contains(other)
          && (el.compareDocumentPosition(other) & Node.DOCUMENT_POSITION_FOLLOWING));
  return later.length ? later[0].id : null;
}"""


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    upstream = tmp_path_factory.mktemp("upstream")
    for name, files in GOOD.items():
        clone(make_repo(upstream / name, files).as_uri(), data_dir / "extensions")
    srv = start_server(["--data-dir", str(data_dir), "--no-download-sd-model", "--api", "--shout-level", "3"],
                       data_dir, env=SERVER_ENV)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api(server):
    import webuiapi

    return webuiapi.WebUIApi(host="127.0.0.1", port=server.port, sampler="Euler", steps=1)


@pytest.fixture(scope="module")
def page(browser_page, server):
    """One page for the module, loaded once with a 64x64, 1-step form (each test undoes what it changes)."""
    fresh(browser_page, server.url)
    return browser_page


def fresh(page, url: str) -> None:
    """Load the page, wait until every tab is rendered (webui/ui/page_js.py marks it), fill the small form."""
    open_page(page, url)
    page.wait_for_function("() => document.documentElement.dataset.webuiTabsRendered", timeout=30_000)
    small_form(page, "txt2img", "a boat", seed=11)
    set_number(page, "txt2img_steps", 1)


def generate(page, prompt: str = "a boat") -> dict[str, str]:
    """Generate in txt2img through the page (the small form); returns the shown infotext parsed."""
    open_tab(page, "txt2img")
    set_text(page, "txt2img_prompt", prompt)
    message = run_and_wait(page, "txt2img")
    assert "Time taken" in message, message
    return parse_infotext(page.inner_text("#html_info_txt2img"))


def info_of(result) -> list[dict[str, str]]:
    return [parse_infotext(text) for text in result.info["infotexts"]]


# -- all of them loaded ----------------------------------------------------------------------------
def test_every_extension_loaded_without_errors(page, server):
    open_tab(page, "extensions")
    for name in GOOD:
        row = page.locator(f"#extensions_installed_html tr[data-extension='{name}']")
        assert row.locator(".ext-status").inner_text() == "loaded", name
        assert row.locator(".ext-error").inner_text() == "", name
    listed = {e["name"]: e for e in requests.get(server.url + "/sdapi/v1/extensions", timeout=30).json()}
    assert set(GOOD) <= set(listed) and all(listed[n]["enabled"] and listed[n]["commit_hash"] for n in GOOD)


# -- an always-on script ---------------------------------------------------------------------------
def test_alwayson_script_changes_the_prompt_and_infotext_in_the_browser(page):
    open_tab(page, "txt2img")
    page.click("#script_txt2img_uppercase_accordion")  # A1111's accordion of the script, closed at first
    box = page.locator("#script_txt2img_uppercase_enabled input[type=checkbox]")
    assert not box.is_checked()
    box.check()
    params = generate(page, "a quiet harbour")
    assert params["Prompt"] == "A QUIET HARBOUR" and params["Uppercased"] == "yes"
    box.uncheck()
    params = generate(page, "a quiet harbour")
    assert params["Prompt"] == "a quiet harbour" and "Uppercased" not in params


def test_alwayson_script_through_the_api(api, server):
    result = api.txt2img(prompt="a quiet harbour", batch_size=2,
                         alwayson_scripts={"Uppercase": {"args": [True]}}, **SMALL)
    assert result.info["all_prompts"] == ["A QUIET HARBOUR", "A QUIET HARBOUR"]
    assert [p["Uppercased"] for p in info_of(result)] == ["yes", "yes"]
    plain = api.txt2img(prompt="a quiet harbour", **SMALL)  # its ui() default: off
    assert "Uppercased" not in info_of(plain)[0]


# -- preload flag, on_ui_settings option, on_app_started route ------------------------------------
def test_preload_flag_reaches_cmd_opts_and_the_api(server, api):
    assert requests.get(server.url + "/shout/state", timeout=30).json() == {"level": 3, "suffix": "!"}
    flags = requests.get(server.url + "/sdapi/v1/cmd-flags", timeout=30).json()
    assert flags["shout_level"] == 3  # A1111's cmd-flags lists extension flags like its own
    params = info_of(api.txt2img(prompt="x", **SMALL))[0]
    assert params["Shout"] == "3!"


def test_on_ui_settings_option_is_listed_settable_and_in_the_settings_tab(page, server, api):
    options = requests.get(server.url + "/sdapi/v1/options", timeout=30).json()
    assert options["shout_suffix"] == "!"
    assert requests.post(server.url + "/sdapi/v1/options", json={"shout_suffix": "?!"}, timeout=30).ok
    assert requests.get(server.url + "/shout/state", timeout=30).json()["suffix"] == "?!"
    assert info_of(api.txt2img(prompt="x", **SMALL))[0]["Shout"] == "3?!"
    # A fresh page shows it on its section's page of the Settings tab, with the stored value.
    fresh(page, server.url)
    open_tab(page, "settings")
    open_subtab(page, "settings_Shout")
    page.wait_for_function("() => document.querySelector('#setting_shout_suffix textarea, "
                           "#setting_shout_suffix input')?.value === '?!'")
    assert "Suffix the Shout extension writes" in page.inner_text("#settings_Shout")
    requests.post(server.url + "/sdapi/v1/options", json={"shout_suffix": "!"}, timeout=30)
    open_tab(page, "txt2img")


# -- a selectable Script ---------------------------------------------------------------------------
def test_selectable_script_in_the_script_dropdown(page):
    open_tab(page, "txt2img")
    assert not page.is_visible("#script_txt2img_add_suffix_suffix")
    choose(page, "txt2img_script_list", "Add suffix")
    page.wait_for_selector("#script_txt2img_add_suffix_suffix", state="visible")
    set_text(page, "script_txt2img_add_suffix_suffix", "at sunset")
    assert generate(page, "a boat")["Prompt"] == "a boat, at sunset"
    choose(page, "txt2img_script_list", "None")
    page.wait_for_selector("#script_txt2img_add_suffix_suffix", state="hidden")
    assert generate(page, "a boat")["Prompt"] == "a boat"


def test_selectable_script_through_the_api(api, server):
    listed = requests.get(server.url + "/sdapi/v1/scripts", timeout=30).json()["txt2img"]
    assert {"add suffix", "uppercase", "shout"} <= set(listed)  # always-on scripts too, as A1111 lists them
    result = api.txt2img(prompt="a boat", script_name="add suffix", script_args=["at dawn"], **SMALL)
    assert info_of(result)[0]["Prompt"] == "a boat, at dawn"


# -- Gradio 3 calls and after_component ------------------------------------------------------------
def test_gradio3_controls_render_after_the_width_slider_and_their_handlers_work(page):
    open_tab(page, "txt2img")
    # after_component of txt2img_width: the extension's box is the next element (with an id) after the
    # width slider in the page, before the height slider.
    assert page.evaluate(NEXT_ID_AFTER, "txt2img_width") == "g3_after_width"
    assert page.is_visible("#g3_note") and page.is_visible("#g3_fill")
    page.click("#g3_fill")  # a Python handler answering with Gradio 3's gr.Textbox.update(value=...)
    page.wait_for_function("() => document.querySelector('#g3_note textarea').value === 'filled by python'")
    set_text(page, "g3_note", "hello")
    page.click("#g3_shout")  # _js runs in the page first, then the Python function
    page.wait_for_function("() => document.querySelector('#g3_note textarea').value === 'HELLO!'")
    # Its ui() slider, built with Gradio 3's positional arguments, is in the page with its value.
    assert page.input_value("#script_txt2img_gradio3_panel_strength input[type=number]") == "4"
    assert generate(page)["G3 strength"] == "4"


def test_gradio3_script_args_in_script_info(server, api):
    info = requests.get(server.url + "/sdapi/v1/script-info", timeout=30).json()
    panel = next(s for s in info if s["name"] == "gradio3 panel" and not s["is_img2img"])
    assert panel["is_alwayson"]
    assert [(a["label"], a["minimum"], a["maximum"], a["value"]) for a in panel["args"]] == \
        [("G3 strength", 0, 10, 4)]
    result = api.txt2img(prompt="x", alwayson_scripts={"gradio3 panel": {"args": [7]}}, **SMALL)
    assert info_of(result)[0]["G3 strength"] == "7"


# -- javascript/ -----------------------------------------------------------------------------------
def test_javascript_onuiloaded_ran_and_found_the_page_through_gradioapp(page):
    page.wait_for_function("() => document.querySelector('#txt2img_generate').dataset.jsExtension")
    marker = page.evaluate("() => document.querySelector('#txt2img_generate').dataset.jsExtension")
    assert marker.startswith("loaded ") and int(marker.split()[1]) >= 7  # the main tabs were there


# -- the built-in classic scripts (A1111's X/Y/Z plot, Prompt matrix, Prompts from file) --------------
def gallery_sizes(page) -> list[tuple[int, int]]:
    page.wait_for_function("() => [...document.querySelectorAll('#txt2img_gallery img')].every("
                           "(img) => img.complete && img.naturalWidth > 0)")
    return [tuple(s) for s in page.evaluate(
        "() => [...document.querySelectorAll('#txt2img_gallery img')]"
        ".map((i) => [i.naturalWidth, i.naturalHeight])")]


def test_xyz_plot_over_steps_and_cfg_in_the_browser(page):
    open_tab(page, "txt2img")
    choose(page, "txt2img_script_list", "X/Y/Z plot")
    page.wait_for_selector(f"#{XYZ}_x_type", state="visible")
    # Values first: picking a type answers with the values box as it was when picked (A1111's handler),
    # which would overwrite values typed while that answer is on its way.
    set_text(page, f"{XYZ}_x_values", "1,2")
    set_text(page, f"{XYZ}_y_values", "3,7")
    choose(page, f"{XYZ}_x_type", "Steps")
    choose(page, f"{XYZ}_y_type", "CFG Scale")
    params = generate(page, "a tower")
    # The labelled grid only ("Include Sub Images" is off, as A1111 starts it): two 64 px cells each way
    # plus the axis labels.
    [(width, height)] = gallery_sizes(page)
    assert width > 2 * 64 and height > 2 * 64
    assert (params["Script"], params["X Type"], params["X Values"], params["Y Type"], params["Y Values"]) == \
        ("X/Y/Z plot", "Steps", "1,2", "CFG Scale", "3,7")


def test_prompt_matrix_in_the_browser(page):
    open_tab(page, "txt2img")
    choose(page, "txt2img_script_list", "Prompt matrix")
    page.wait_for_selector("#script_txt2img_prompt_matrix_put_at_start", state="visible")
    generate(page, "a cat|red|blue")
    sizes = gallery_sizes(page)
    assert len(sizes) == 5 and sizes[0][0] > 2 * 64, sizes  # grid + 4 images


def test_prompts_from_textbox_in_the_browser(page):
    open_tab(page, "txt2img")
    choose(page, "txt2img_script_list", "Prompts from file or textbox")
    box = "script_txt2img_prompts_from_file_or_textbox_prompt_txt"
    page.wait_for_selector(f"#{box}", state="visible")
    set_text(page, box, "a red fox\na blue whale")
    generate(page, "")
    assert len(gallery_sizes(page)) == 2
    page.click("#txt2img_gallery button.thumbnail-item >> nth=1")
    page.wait_for_function(
        "() => document.querySelector('#html_info_txt2img').innerText.includes('a blue whale')")


def xyz_args(x_type, x_values, y_type, y_values):
    # A1111's order: x type/values/dropdown, y ..., z ..., draw_legend, include_lone_images,
    # include_sub_grids, no_fixed_seeds, vary_seeds_x/y/z, margin_size, csv_mode
    return [x_type, x_values, [], y_type, y_values, [], "Nothing", "", [], True, True, False, False,
            False, False, False, 0, False]


def test_classic_scripts_through_the_api(api):
    xyz = api.txt2img(prompt="a tower", script_name="x/y/z plot",
                      script_args=xyz_args("Steps", "1,2", "CFG Scale", "3,7"), **SMALL)
    assert len(xyz.images) == 5 and xyz.images[0].width > 2 * 64 and xyz.images[0].height > 2 * 64
    cells = [(p["Steps"], p["CFG scale"]) for p in info_of(xyz)[1:]]
    assert sorted(cells) == [("1", "3"), ("1", "7"), ("2", "3"), ("2", "7")]

    matrix = api.txt2img(prompt="a cat|red|blue", script_name="prompt matrix", **SMALL)
    assert len(matrix.images) == 5
    assert matrix.info["all_prompts"][-4:] == ["a cat", "a cat, red", "a cat, blue", "a cat, red, blue"]

    lines = api.txt2img(prompt="", script_name="prompts from file or textbox",
                        script_args=[False, False, "start", "a red fox\na blue whale"], **SMALL)
    assert [p["Prompt"] for p in info_of(lines)] == ["a red fox", "a blue whale"]
    assert json.loads(json.dumps(lines.info))["all_prompts"] == ["a red fox", "a blue whale"]


# -- the Override settings box (issue 15 point 4; on this module's server: no new server) -------------
def test_pasted_clip_skip_fills_override_settings_and_applies_to_that_job_only(page, server):
    open_tab(page, "txt2img")
    box = page.locator("#txt2img_override_settings")
    assert not box.is_visible()  # hidden while empty, as A1111's
    set_text(page, "txt2img_prompt", "a boat\nSteps: 1, Sampler: Euler, CFG scale: 7, Seed: 11, Size: 64x64, "
                                     "Clip skip: 2, RNG: GPU")
    page.click("#txt2img_paste")
    # RNG: GPU equals the setting, so only Clip skip shows.
    page.wait_for_selector("#txt2img_override_settings", state="visible", timeout=30_000)
    page.wait_for_function("() => document.querySelector('#txt2img_override_settings')"
                           ".innerText.includes('Clip skip: 2')", timeout=30_000)
    assert "RNG" not in box.inner_text()
    try:
        message = run_and_wait(page, "txt2img")
        assert "Time taken" in message, message
        assert parse_infotext(page.inner_text("#html_info_txt2img"))["Clip skip"] == "2"
        options = requests.get(server.url + "/sdapi/v1/options", timeout=30).json()
        assert options["CLIP_stop_at_last_layers"] == 1  # the store never saw the override
    finally:
        # Removing the entry empties and hides the box again (the other tests need it empty).
        box.locator(".token-remove").first.click()
        page.wait_for_selector("#txt2img_override_settings", state="hidden", timeout=30_000)
        set_text(page, "txt2img_prompt", "a boat")
