"""The server answers while the first model still loads: the page and the API respond, a generation sent at
once waits behind the load (progress says "Loading model...") and then succeeds. The load is held with an
event (start_model_load's `serving` gate), so nothing here depends on timing."""
from __future__ import annotations

import threading

from tests.api.inprocess import build_ctx, local_client, wait_until
from webui.server import create_app, start_model_load


def test_api_and_page_answer_before_the_model_loads_and_txt2img_waits_for_it(tmp_path):
    ctx = build_ctx(tmp_path, nowebui=False, api=True)
    gate = threading.Event()
    try:
        load = start_model_load(ctx, gate)
        app = create_app(ctx)
        app.state.model_load = load  # as serve() does
        client = local_client(app)

        assert client.get("/").status_code == 200
        options = client.get("/sdapi/v1/options")
        assert options.status_code == 200 and "sd_model_checkpoint" in options.json()
        assert ctx.pipelines.current is None and not load.finished
        assert client.get("/internal/model-ready").json()["ready"] is False

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
    finally:
        gate.set()
        ctx.close()
