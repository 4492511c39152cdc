"""Guards in front of the whole app: without --listen a request naming a foreign Host is refused (DNS
rebinding against a local install); a state-changing request from another site's page is refused
(Origin / Sec-Fetch-Site), while curl, requests and the webuiapi client - which send neither - keep working;
--auth protects the UI and the API with one flag. In-process."""
from __future__ import annotations

import pytest

from tests.api.inprocess import ThreadedServer, build_app, build_ctx, local_client

BODYLESS = ("/sdapi/v1/interrupt", "/sdapi/v1/skip", "/sdapi/v1/unload-checkpoint")


@pytest.fixture(scope="module")
def local_app(tmp_path_factory):
    ctx = build_ctx(tmp_path_factory.mktemp("guards"), cors_allow_origins="http://localhost:3000")
    app = build_app(ctx)
    yield app, ctx
    ctx.close()


@pytest.fixture(scope="module")
def client(local_app):
    with local_client(local_app[0]) as test_client:
        yield test_client


@pytest.mark.parametrize("host", ["evil.example", "evil.example:7860", "192.168.1.20:7860", "attacker.test"])
def test_a_foreign_host_is_refused_without_listen(client, host):
    answer = client.get("/sdapi/v1/samplers", headers={"Host": host})
    assert answer.status_code == 403 and "--listen" in answer.json()["detail"], answer.text


@pytest.mark.parametrize("host", ["127.0.0.1:7860", "localhost:7860", "localhost", "[::1]:7860", "127.0.0.2",
                                  "0.0.0.0:7860", "app.localhost:7860"])
def test_local_host_names_are_served(client, host):
    assert client.get("/sdapi/v1/samplers", headers={"Host": host}).status_code == 200


def test_with_listen_any_host_is_served(tmp_path):
    ctx = build_ctx(tmp_path, listen=True)
    try:
        with local_client(build_app(ctx)) as listening:
            assert listening.get("/sdapi/v1/samplers", headers={"Host": "gpu-box.lan:7860"}).status_code == 200
    finally:
        ctx.close()


@pytest.mark.parametrize("path", BODYLESS)
@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                     {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                                     {"Origin": "http://127.0.0.1:9999"}])
def test_bodyless_posts_cannot_be_forged_from_another_site(client, path, headers):
    answer = client.post(path, headers=headers)
    assert answer.status_code == 403, answer.text
    assert "cross-site" in answer.json()["detail"]


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://127.0.0.1:7860"}, {"Sec-Fetch-Site": "same-origin"},
                                     {"Sec-Fetch-Site": "none"}, {"Origin": "http://localhost:3000"}])
def test_same_origin_allowed_origins_and_non_browser_clients_pass(client, headers):
    assert client.post("/sdapi/v1/interrupt", headers=headers).status_code == 200
    assert client.post("/sdapi/v1/txt2img", json={"steps": 0}, headers=headers).status_code == 422


def test_an_allowed_origin_gets_cors_headers(client):
    preflight = client.options("/sdapi/v1/txt2img", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    answer = client.get("/sdapi/v1/samplers", headers={"Origin": "http://localhost:3000"})
    assert answer.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "access-control-allow-origin" not in client.get("/sdapi/v1/samplers",
                                                           headers={"Origin": "http://evil.example"}).headers


def test_webuiapi_and_plain_requests_work_through_a_real_server(local_app):
    import requests
    import webuiapi

    app, ctx = local_app
    with ThreadedServer(app) as server:
        api = webuiapi.WebUIApi(host="127.0.0.1", port=server.port)
        assert api.interrupt() == {} and api.skip() == {}
        assert requests.post(server.url + "/sdapi/v1/interrupt", timeout=10).status_code == 200
        forged = requests.post(server.url + "/sdapi/v1/interrupt", headers={"Origin": "http://evil.example"},
                               timeout=10)
        assert forged.status_code == 403


@pytest.fixture(scope="module")
def both_protected(tmp_path_factory):
    ctx = build_ctx(tmp_path_factory.mktemp("auth-both"), nowebui=False, api=True, auth="u:p")
    app = build_app(ctx)
    with local_client(app) as test_client:
        yield test_client
    ctx.close()


def test_auth_protects_the_ui_and_the_api(both_protected):
    client = both_protected
    assert client.get("/sdapi/v1/sd-models").status_code == 401
    assert client.get("/sdapi/v1/sd-models", auth=("u", "p")).status_code == 200
    assert client.get("/config").status_code == 401  # the Gradio UI's config needs a login
    assert client.post("/login", data={"username": "u", "password": "wrong"}).status_code != 200
    assert client.post("/login", data={"username": "u", "password": "p"}).status_code == 200
    assert client.get("/config").status_code == 200


def test_api_auth_path_reads_credentials_from_a_file(tmp_path):
    secrets_file = tmp_path / "api-users.txt"
    secrets_file.write_text("svc:filepw\n")
    ctx = build_ctx(tmp_path, api_auth_path=str(secrets_file))
    try:
        with local_client(build_app(ctx)) as client:
            assert client.get("/sdapi/v1/samplers").status_code == 401
            assert client.get("/sdapi/v1/samplers", auth=("svc", "filepw")).status_code == 200
    finally:
        ctx.close()
