"""Broken extensions cloned into extensions/ (a syntax error, a process() that raises, an unsupported A1111
import, a native hook that raises) leave the app usable: the page loads, generation works in the browser and
through the API, and each error is shown in the Extensions tab and written to the server log. The server
runs with --listen (the browser still reaches it on 127.0.0.1), so Install from URL is refused there with a
message naming --enable-insecure-extension-access."""
from __future__ import annotations

import json

import pytest
import requests

from tests.helpers.a1111_samples import BROKEN, UPPERCASE
from tests.helpers.extension_repos import clone, make_repo
from tests.helpers.server import start_server
from tests.ui.conftest import open_page, open_subtab, open_tab, run_and_wait, small_form

pytestmark = [pytest.mark.browser, pytest.mark.server]

SERVER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# What each broken extension's row and the log must say.
ERRORS = {
    "syntax-error": "scripts/broken.py: syntax error at line 3",
    "needs-sd-hijack": "sd_hijack",
    "raiser": "RuntimeError: no weights here",
    "native-hook-raises": "ValueError: after_image went wrong",
}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    return tmp_path_factory.mktemp("upstream")


@pytest.fixture(scope="module")
def server(data_dir, upstream):
    # A working extension beside the broken ones: it must keep working.
    for name, files in {**BROKEN, "uppercase": UPPERCASE}.items():
        clone(make_repo(upstream / name, files).as_uri(), data_dir / "extensions")
    srv = start_server(["--data-dir", str(data_dir), "--no-download-sd-model", "--api", "--listen"], data_dir,
                       env=SERVER_ENV)
    yield srv
    srv.stop()


def row(page, name: str):
    return page.locator(f"#extensions_installed_html tr[data-extension='{name}']")


def test_the_page_loads_and_generates_with_broken_extensions(page, server):
    page.wait_for_function("() => document.documentElement.dataset.webuiTabsRendered", timeout=30_000)
    small_form(page, "txt2img", "a lighthouse", seed=3)
    message = run_and_wait(page, "txt2img")
    assert "Time taken" in message and "Error" not in message
    assert page.locator("#txt2img_gallery img").count() == 1
    # The working extension beside them still works.
    page.click("#script_txt2img_uppercase_accordion")
    page.check("#script_txt2img_uppercase_enabled input[type=checkbox]")
    run_and_wait(page, "txt2img")
    assert "A LIGHTHOUSE" in page.inner_text("#html_info_txt2img")


def test_the_api_generates_and_a_named_broken_script_fails_the_job_naming_it(server):
    body = {"prompt": "a lighthouse", "width": 64, "height": 64, "steps": 1, "seed": 3}
    answer = requests.post(server.url + "/sdapi/v1/txt2img", json=body, timeout=120)
    assert answer.status_code == 200 and len(answer.json()["images"]) == 1
    assert json.loads(answer.json()["info"])["all_prompts"] == ["a lighthouse"]
    named = requests.post(server.url + "/sdapi/v1/txt2img", timeout=120,
                          json={**body, "alwayson_scripts": {"raiser": {"args": []}}})
    assert named.status_code >= 400
    assert "raiser" in named.text and "no weights here" in named.text


def test_each_error_is_in_the_extensions_tab_and_the_log(page, server):
    # The page made after the generations above shows what failed at load and at run time.
    open_tab(page, "extensions")
    for name, error in ERRORS.items():
        assert error in row(page, name).locator(".ext-error").inner_text(), name
    for name in ("syntax-error", "needs-sd-hijack"):  # nothing of theirs loaded
        assert row(page, name).locator(".ext-status").inner_text() == "failed"
        assert "ext-failed" in row(page, name).get_attribute("class")
    assert row(page, "uppercase").locator(".ext-error").inner_text() == ""
    log = server.log()
    for name, error in ERRORS.items():
        assert error in log, f"{name}: {error!r} not in the server log"


def test_install_from_url_is_refused_with_listen(page, server, upstream, data_dir):
    source = make_repo(upstream / "fresh-one", UPPERCASE)
    open_tab(page, "extensions")
    open_subtab(page, "extensions_install_from_url_tab")
    page.fill("#install_url textarea, #install_url input", source.as_uri())
    page.click("#install_button")
    page.wait_for_selector("#extension_install_result .gen-error", timeout=60_000)
    message = page.inner_text("#extension_install_result")
    assert "--listen" in message and "--enable-insecure-extension-access" in message
    assert not (data_dir / "extensions" / "fresh-one").exists()
    open_page(page, server.url)  # and the page still works
