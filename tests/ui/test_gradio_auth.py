"""--gradio-auth: the UI asks for a login on Gradio's login page, refuses wrong credentials, and serves none
of its own routes (config, events, files) without the login. As documented in README and SECURITY.md,
--gradio-auth alone protects the UI only: /sdapi/v1 stays open (--auth protects both)."""
from __future__ import annotations

import pytest
import requests

from tests.helpers.browser import chromium_page
from tests.helpers.server import start_server
from tests.ui.test_page_ids import wait_for_ids

pytestmark = [pytest.mark.browser, pytest.mark.server]

USER, PASSWORD = "alice", "wonder land"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("gradio-auth")
    srv = start_server(["--data-dir", str(data), "--no-download-sd-model", "--api",
                        "--gradio-auth", f"{USER}:{PASSWORD},bob:builder"], data)
    yield srv
    srv.stop()


def log_in(page, user: str, password: str) -> None:
    page.fill("input[data-testid=textbox]", user)
    page.fill("input[data-testid=password]", password)
    page.click("button:has-text('Login')")


def test_the_login_page_refuses_wrong_credentials_and_admits_right_ones(server):
    with chromium_page() as page:
        page.goto(server.url, wait_until="domcontentloaded")
        page.wait_for_selector("input[data-testid=password]", timeout=30_000)
        assert page.locator("#txt2img_generate").count() == 0
        for user, password in ((USER, "wrong"), ("mallory", PASSWORD), (USER, "")):
            log_in(page, user, password)
            page.wait_for_selector("text=Incorrect credentials", timeout=10_000)
            assert page.locator("#txt2img_generate").count() == 0
        log_in(page, USER, PASSWORD)
        page.wait_for_selector("#txt2img_generate", state="visible", timeout=30_000)
        assert wait_for_ids(page, ["tab_img2img", "img2img_prompt", "tab_settings"]) == []
        # The session cookie is what the UI's own requests carry from now on.
        assert any(c["name"].startswith("access-token") for c in page.context.cookies())


def test_gradio_routes_need_the_login(server):
    url = server.url
    for method, path in (("get", "/config"), ("get", "/gradio_api/info"), ("post", "/gradio_api/queue/join"),
                         ("get", "/gradio_api/queue/data?session_hash=x"), ("post", "/gradio_api/upload"),
                         ("get", "/gradio_api/file=/etc/hostname"),
                         ("get", "/sd_extra_networks/thumb?filename=/nothing.png")):
        response = requests.request(method, url + path, json={"data": [], "fn_index": 0, "session_hash": "x"},
                                    timeout=10)
        assert response.status_code == 401, (path, response.status_code)
    wrong = requests.post(url + "/login", data={"username": USER, "password": "nope"}, timeout=10)
    assert wrong.status_code == 400
    session = requests.Session()
    assert session.post(url + "/login", data={"username": "bob", "password": "builder"}, timeout=10).ok
    assert session.get(url + "/config", timeout=10).status_code == 200
    # The extra-networks previews take the same login (404: logged in, but no such preview).
    assert session.get(url + "/sd_extra_networks/thumb?filename=/nothing.png", timeout=10).status_code == 404


def test_the_api_stays_open_with_gradio_auth_alone(server):
    # A1111's behaviour, documented: --gradio-auth is the UI's password; --api-auth or --auth guard the API.
    response = requests.get(server.url + "/sdapi/v1/options", timeout=10)
    assert response.status_code == 200 and "sd_model_checkpoint" in response.json()
