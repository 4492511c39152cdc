"""The server answers while the first model still loads: the page and the API respond, the page's load event
runs through Gradio's queue, a generation sent at once waits behind the load (progress says "Loading
model...") and then succeeds. The load is held with an event (start_model_load's `serving` gate), so nothing
here depends on timing. Building the app builds one Gradio app and one page config (Gradio built 3 and 5:
each gr.Blocks' queue() and end, twice in mount_gradio_app); the config served is the last, with our CSS."""
from __future__ import annotations

import contextlib
import json
import threading

from gradio.blocks import BlocksConfig
from gradio.routes import App

from tests.api.inprocess import build_ctx, local_client, wait_until
from webui.server import create_app, start_model_load


def counting_gradio_builds(monkeypatch) -> dict:
    """Count Gradio's page-config builds and app builds (the library's own functions, wrapped)."""
    counts = {"configs": 0, "apps": 0}
    own_config, own_configure = BlocksConfig.get_config, App.configure_app

    def counted_config(self, *args, **kwargs):
        counts["configs"] += 1
        return own_config(self, *args, **kwargs)

    def counted_configure(self, blocks):
        counts["apps"] += 1
        return own_configure(self, blocks)

    monkeypatch.setattr(BlocksConfig, "get_config", counted_config)
    monkeypatch.setattr(App, "configure_app", counted_configure)
    return counts


def run_page_load_event(client) -> None:
    """The page's load event, joined and streamed as the page does; it must complete with every output."""
    config = client.get("/config").json()
    assert "#demo_notice" in config["css"] and len(config["components"]) > 500
    load = next(d for d in config["dependencies"] if any(t[1] == "load" for t in d["targets"]))
    session = "startup1234"
    joined = client.post("/gradio_api/queue/join", json={
        "data": [], "event_data": None, "fn_index": load["id"], "trigger_id": None, "session_hash": session})
    assert joined.status_code == 200, joined.text
    stream = client.get("/gradio_api/queue/data", params={"session_hash": session}).text
    messages = [json.loads(line[6:]) for line in stream.splitlines() if line.startswith("data: ")]
    completed = [m for m in messages if m.get("msg") == "process_completed"]
    assert completed and completed[0]["success"], stream[-2000:]
    assert len(completed[0]["output"]["data"]) == len(load["outputs"])


def test_api_and_page_answer_before_the_model_loads_and_txt2img_waits_for_it(tmp_path, monkeypatch):
    ctx = build_ctx(tmp_path, nowebui=False, api=True)
    gate = threading.Event()
    with contextlib.ExitStack() as cleanup:  # last in, first out: the client, the gate, then the context
        cleanup.callback(ctx.close)
        cleanup.callback(gate.set)
        load = start_model_load(ctx, gate)
        counts = counting_gradio_builds(monkeypatch)
        app = create_app(ctx)
        assert counts == {"configs": 1, "apps": 1}
        app.state.model_load = load  # as serve() does
        client = cleanup.enter_context(local_client(app))  # `with`: lifespan on, so Gradio's queue runs

        assert client.get("/").status_code == 200
        run_page_load_event(client)
        options = client.get("/sdapi/v1/options")
        assert options.status_code == 200 and "sd_model_checkpoint" in options.json()
        assert ctx.pipelines.current is None and not load.finished
        assert client.get("/internal/model-ready").json()["ready"] is False
        assert client.get("/internal/ping").json() == {}  # A1111's health check answers during the load too

        answer = {}

        def post():
            answer["response"] = client.post("/sdapi/v1/txt2img", json={
                "prompt": "a lighthouse", "steps": 2, "width": 64, "height": 64, "seed": 3})

        sender = threading.Thread(target=post)
        sender.start()
        queued = wait_until(lambda: [j for j in ctx.jobs.list() if j.kind == "txt2img"], timeout=300)
        assert queued[0].state == "queued" and not load.finished
        # The worker may not have picked the load up yet on a busy machine: wait for it, then it says so.
        wait_until(lambda: client.get("/sdapi/v1/progress").json()["textinfo"] == "Loading model...",
                   timeout=300, every=0.1)
        assert not load.finished and queued[0].state == "queued"

        gate.set()  # the server "listens": the model loads, then the queued generation runs
        sender.join(timeout=600)
        assert not sender.is_alive(), "txt2img did not finish after the model loaded"
        response = answer["response"]
        assert response.status_code == 200, response.text[-2000:]
        assert len(response.json()["images"]) == 1
        assert load.state == "done" and ctx.pipelines.current is not None
        assert client.get("/internal/model-ready").json() == {"ready": True, "model_error": None}

