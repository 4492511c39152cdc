"""A native extension's whole life through the Extensions tab, in a real browser against the real server:
Install from URL (a file:// git repository made from docs/examples/hello-extension), "Apply and restart UI"
(the server re-executes itself in place: same process), its tab and its infotext hook (UI and API),
disabled and gone after a restart (-m slow), enabled and updated to a new upstream commit. Also: a requirement
for another torch is refused at install time and nothing is installed.

The tests are steps of one story and run in file order on one server.
"""
from __future__ import annotations

import importlib.metadata
import json

import pytest
import requests

from tests.helpers.extension_repos import commit, make_repo
from tests.helpers.server import ROOT, start_server
from tests.ui.conftest import choose, open_subtab, open_tab, run_and_wait, small_form

pytestmark = [pytest.mark.browser, pytest.mark.server]

EXAMPLE = ROOT / "docs" / "examples" / "hello-extension"
NAME = "hello-extension"
RESTARTED = "Restarting to apply extension changes"  # the server's log line before it re-executes itself
# One torch thread in the server: tiny models on a shared 2-core box run much faster without contention.
SERVER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
RESTART_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """The extension's "remote": a git repository of the example extension."""
    return make_repo(tmp_path_factory.mktemp("upstream") / NAME, copy_from=EXAMPLE)


@pytest.fixture(scope="module")
def server(data_dir):
    srv = start_server(["--data-dir", str(data_dir), "--no-download-sd-model", "--api"], data_dir,
                       env=SERVER_ENV)
    yield srv
    srv.stop()


def installed_row(page, name: str):
    return page.locator(f"#extensions_installed_html tr[data-extension='{name}']")


def install_from_url(page, url: str) -> str:
    """Extensions -> Install from URL: type the URL, click Install, return the message it shows."""
    open_tab(page, "extensions")
    open_subtab(page, "extensions_install_from_url_tab")
    page.fill("#install_url textarea, #install_url input", url)
    return click_for_message(page, "#install_button", "extension_install_result")


def click_for_message(page, button: str, result_id: str, timeout: float = 60_000) -> str:
    """Click `button` and wait for a new message line (.gen-note / .gen-error) in `result_id`."""
    line = f"#{result_id} .gen-note, #{result_id} .gen-error"
    page.evaluate("(sel) => document.querySelectorAll(sel).forEach((el) => el.dataset.old = '1')", line)
    page.click(button)
    page.wait_for_function("(sel) => [...document.querySelectorAll(sel)].some((el) => !el.dataset.old)",
                           arg=line, timeout=timeout)
    return page.inner_text(f"#{result_id}")


def set_enabled(page, name: str, enabled: bool) -> None:
    box = page.locator("#extensions_enabled label").filter(has_text=name).locator("input[type=checkbox]")
    box.set_checked(enabled)


def apply_and_restart(page, server) -> None:
    """Click "Apply and restart UI" and wait, without reloading by hand, until the page has come back
    from the restarted server; checks it restarted in place (same process, one more restart line)."""
    restarts = server.log().count(RESTARTED)
    open_tab(page, "extensions")
    with page.expect_navigation(wait_until="domcontentloaded", timeout=RESTART_TIMEOUT_MS):
        page.click("#extensions_apply")
        page.wait_for_function("() => document.querySelector('#extensions_installed_result')"
                               "?.innerText.includes('Restarting')", timeout=30_000)
    wait_rendered(page)
    assert server.proc.poll() is None, "the server exited instead of restarting"
    assert server.log().count(RESTARTED) == restarts + 1


def wait_rendered(page) -> None:
    """Until every tab is rendered (webui/ui/page_js.py marks it), so a missing tab is really missing."""
    page.wait_for_selector("#txt2img_generate", state="visible", timeout=60_000)
    page.wait_for_function("() => document.documentElement.dataset.webuiTabsRendered", timeout=30_000)


def generate_infotext(page) -> str:
    open_tab(page, "txt2img")
    small_form(page, "txt2img", "a lighthouse", seed=5)
    assert "Time taken" in run_and_wait(page, "txt2img")
    return page.inner_text("#html_info_txt2img")


def api_txt2img(server, **body) -> requests.Response:
    small = {"prompt": "a lighthouse", "seed": 5, "width": 64, "height": 64, "steps": 2}
    return requests.post(server.url + "/sdapi/v1/txt2img", json={**small, **body}, timeout=120)


def test_install_from_url_then_apply_and_restart_loads_the_extension(page, server, upstream, data_dir):
    message = install_from_url(page, upstream.as_uri())
    assert f"installed {NAME}" in message and "restart" in message
    assert (data_dir / "extensions" / NAME / "extension.toml").is_file()
    # The Installed list shows it at once, enabled, so "Apply and restart UI" keeps it enabled.
    open_subtab(page, "extensions_installed_tab")
    assert installed_row(page, NAME).count() == 1
    assert page.locator("#extensions_enabled label").filter(has_text=NAME).locator("input").is_checked()

    apply_and_restart(page, server)
    assert page.locator("#tab_hello").count() == 1
    assert page.inner_text("#tab_hello-button").strip() == "Hello"
    # Its javascript/hello.js ran (onUiLoaded + gradioApp()) and its route answers.
    page.wait_for_function("() => document.querySelector('#tab_hello')?.dataset.helloLoaded === 'yes'")
    assert requests.get(server.url + "/hello/ping", timeout=30).json() == {"greeting": "Hello"}
    open_tab(page, "extensions")
    assert "loaded" in installed_row(page, NAME).locator(".ext-status").inner_text()


def test_its_hook_writes_infotext_in_the_ui_and_through_the_api(page, server):
    assert "Hello: Hello" in generate_infotext(page)

    import webuiapi

    api = webuiapi.WebUIApi(host="127.0.0.1", port=server.port, sampler="Euler", steps=2)
    result = api.txt2img(prompt="a lighthouse", seed=5, width=64, height=64,
                         alwayson_scripts={NAME: {"args": [True, "Hi"]}})
    assert "Hello: Hi" in result.info["infotexts"][0]
    assert "Hello: Hi" in result.image.info["parameters"]
    off = api_txt2img(server, alwayson_scripts={NAME: {"args": [False, ""]}})
    assert off.status_code == 200 and "Hello" not in json.loads(off.json()["info"])["infotexts"][0]


# A third restart (~30 s, minutes on a loaded box). The default run checks the same rule without a server:
# tests/unit/extensions/test_manage.py::test_disable_removes_it_after_restart_and_enable_brings_it_back
# (no tab, config.json) and tests/integration/test_native_hooks.py::test_disabled_extensions_do_not_load
# (no infotext).
@pytest.mark.slow
def test_disabled_after_restart_its_tab_and_infotext_are_gone(page, server, upstream, data_dir):
    if not (data_dir / "extensions" / NAME).is_dir():  # run alone (-m slow): install it first
        assert f"installed {NAME}" in install_from_url(page, upstream.as_uri())
    open_tab(page, "extensions")
    set_enabled(page, NAME, False)
    apply_and_restart(page, server)
    assert json.loads((data_dir / "config.json").read_text())["disabled_extensions"] == [NAME]
    assert page.locator("#tab_hello").count() == 0
    assert "Hello" not in generate_infotext(page)
    assert "disabled" in installed_row(page, NAME).locator(".ext-status").inner_text()
    # The API no longer knows it (A1111 answers 422 for an unknown always-on script).
    assert api_txt2img(server, alwayson_scripts={NAME: {"args": [True, "Hi"]}}).status_code == 422


def test_enable_and_update_to_a_new_upstream_commit(page, server, upstream):
    init = upstream / "__init__.py"
    init.write_text(init.read_text().replace('api.add_tab("Hello",', 'api.add_tab("Hello v2",'))
    new_commit = commit(upstream, "v2: a new tab title")

    open_tab(page, "extensions")
    set_enabled(page, NAME, True)
    assert f"Updates available: {NAME}" in click_for_message(page, "#extensions_check",
                                                             "extensions_installed_result")
    assert installed_row(page, NAME).locator(".ext-update").inner_text() == "behind"
    choose(page, "extensions_target", NAME)
    assert f"{NAME} updated" in click_for_message(page, "#extensions_update", "extensions_installed_result")

    apply_and_restart(page, server)
    assert page.inner_text("#tab_hello-button").strip() == "Hello v2"
    listed = {e["name"]: e for e in requests.get(server.url + "/sdapi/v1/extensions", timeout=30).json()}
    assert listed[NAME]["enabled"] and listed[NAME]["commit_hash"] == new_commit


def test_a_requirement_for_another_torch_is_refused_and_nothing_installed(page, tmp_path, data_dir):
    repo = make_repo(tmp_path / "wants-old-torch", {"requirements.txt": "torch==1.13.1\n"}, copy_from=EXAMPLE)
    torch_before = importlib.metadata.version("torch")
    message = install_from_url(page, repo.as_uri())
    assert "would replace torch" in message and "1.13.1" in message
    assert not (data_dir / "extensions" / "wants-old-torch").exists()
    assert importlib.metadata.version("torch") == torch_before

