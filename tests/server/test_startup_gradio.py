"""Start-up's Gradio work (issue 17): importing webui.server, as launch.py does before anything imports
gradio, turns off Gradio's type-stub writer (it parsed every component class's source file and wrote .pyi
files beside them, ~3 CPU seconds of each start) and has Gradio remember signatures it asked for (a config
asked once per block); a component class an extension defines still works. (One Gradio app and one page
config per start: test_startup_serving.py.)"""
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

