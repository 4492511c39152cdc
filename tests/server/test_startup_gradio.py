"""Start-up's Gradio work (issue 17): importing webui.server, as launch.py does before anything imports
gradio, turns off Gradio's type-stub writer (it parsed every component class's source file and wrote .pyi
files beside them, ~3 CPU seconds of each start) and has Gradio remember signatures it asked for (a config
asked once per block); a component class an extension defines still works. The page is built into one
Gradio app and one config."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.server import ROOT, _env

pytestmark = pytest.mark.server

# A component class in its own file, as an extension would ship one.
COMPONENT = '''
import gradio as gr


class Stars(gr.components.Component):
    EVENTS = ["change"]

    def __init__(self, value=0, **kwargs):
        super().__init__(value=value, **kwargs)

    def preprocess(self, payload):
        return payload

    def postprocess(self, value):
        return value

    def api_info(self):
        return {"type": "integer"}

    def example_payload(self):
        return 3

    def example_value(self):
        return 3
'''

SCRIPT = r"""
import json, sys
from pathlib import Path
root, folder = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.insert(0, str(root))
import webui.server  # noqa: F401  (what launch.py imports first)
sys.path.insert(0, str(folder))
import gradio as gr
import stars
import inspect
with gr.Blocks() as page:
    widget = stars.Stars(value=5, elem_id="stars")
    widget.change(lambda v: v, widget, widget)
    boxes = [gr.Textbox(label=f"box {i}") for i in range(30)]
config = page.get_config_file()
made = []
own_init = inspect.Signature.__init__
def counted(self, *args, **kwargs):
    made.append(1)
    own_init(self, *args, **kwargs)
inspect.Signature.__init__ = counted
again = page.get_config_file()
inspect.Signature.__init__ = own_init
print(json.dumps({"stubs": sorted(p.name for p in folder.glob("*.pyi")),
                  "value": next(c["props"]["value"] for c in config["components"] if c["id"] == widget._id),
                  "events": len(config["dependencies"]), "same": again == config,
                  "labels": [c["props"]["label"] for c in config["components"] if c["id"] == boxes[7]._id],
                  "signatures": len(made)}))
"""


def test_importing_the_server_first_keeps_gradio_from_writing_stubs_and_redoing_signatures(tmp_path):
    (tmp_path / "stars.py").write_text(COMPONENT)
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT), str(tmp_path)], cwd=ROOT, env=_env(None),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["stubs"] == [], "Gradio wrote type stubs beside an extension's component"
    assert seen["value"] == 5 and seen["events"] == 1  # the class itself still works
    assert seen["same"] and seen["labels"] == ["box 7"]
    # Without remembering: one signature per block per config (32 here; ~4000 per start-up config).
    assert seen["signatures"] < 5, seen["signatures"]


def test_the_page_is_built_into_one_gradio_app_and_one_config_and_its_events_run(tmp_path, monkeypatch):
    """Gradio built 3 apps and 5 page configs per start (each gr.Blocks' queue() and end, and twice in
    mount_gradio_app); one of each is served. The served config is the last one (with our CSS) and the
    page-load event still runs through Gradio's queue on the served app."""
    from fastapi.testclient import TestClient
    from gradio.blocks import BlocksConfig
    from gradio.routes import App

    from tests.api.inprocess import LOCAL_URL, build_ctx
    from webui.server import create_app

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
    ctx = build_ctx(tmp_path, nowebui=False, api=True)
    try:
        app = create_app(ctx)
        assert counts == {"configs": 1, "apps": 1}
        with TestClient(app, base_url=LOCAL_URL) as client:  # `with`: lifespan on, Gradio's queue starts
            assert client.get("/").status_code == 200
            config = client.get("/config").json()
            assert "#demo_notice" in config["css"] and len(config["components"]) > 500
            load = next(d for d in config["dependencies"] if any(t[1] == "load" for t in d["targets"]))
            session = "startup1234"
            joined = client.post("/gradio_api/queue/join", json={
                "data": [], "event_data": None, "fn_index": load["id"], "trigger_id": None,
                "session_hash": session})
            assert joined.status_code == 200, joined.text
            stream = client.get("/gradio_api/queue/data", params={"session_hash": session}).text
            done = [json.loads(line[6:]) for line in stream.splitlines() if line.startswith("data: ")]
            completed = [m for m in done if m.get("msg") == "process_completed"]
            assert completed and completed[0]["success"], stream[-2000:]
            assert len(completed[0]["output"]["data"]) == len(load["outputs"])
    finally:
        ctx.close()
