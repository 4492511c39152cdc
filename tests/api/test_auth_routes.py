"""Which paths --api-auth covers when the UI is mounted too: every route of the app (the API, /docs, routes
an extension adds later) but not the Gradio UI, which has --gradio-auth. In-process with the real app."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from modules.context import build_context
from modules.flags import Flags
from webui.server import create_app

AUTH = ("u", "p")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    flags = Flags(api=True, api_auth=f"{AUTH[0]}:{AUTH[1]}", no_download_sd_model=True,
                  data_dir=str(tmp_path_factory.mktemp("auth-data")))
    ctx = build_context(flags, tmp_path_factory.mktemp("root"))
    app = create_app(ctx)
    # An extension's route, added after the API was installed (as extensions do at load time).
    app.add_api_route("/myextension/ping", lambda: {"pong": True}, methods=["GET"])
    # Mounted apps are matched in order: move the extension route before Gradio's catch-all mount at "/".
    app.router.routes.insert(0, app.router.routes.pop())
    # A local name: without --listen the app refuses TestClient's default Host ("testserver").
    with TestClient(app, base_url="http://127.0.0.1:7860") as test_client:
        yield test_client
    ctx.close()


@pytest.mark.parametrize("path", ["/sdapi/v1/sd-models", "/sdapi/v1/jobs", "/docs", "/openapi.json",
                                  "/myextension/ping", "/controlnet/model_list", "/jobs/whatever"])
def test_api_and_extension_routes_need_auth(client, path):
    response = client.get(path)
    assert response.status_code == 401 and response.json()["error"] == "Unauthorized"
    assert client.get(path, auth=("u", "wrong")).status_code == 401
    assert client.get(path, auth=AUTH).status_code != 401


def test_the_ui_is_not_behind_the_api_password(client):
    assert client.get("/").status_code == 200
