"""Start-up serves before the heavy libraries load: building the context and the app (API + UI, built-in
extensions loaded) imports none of torch, diffusers, transformers, peft, onnxruntime or spandrel; the
model's libraries come in the background (issue 17: HTTP 200 below the bare import time of those libraries,
and under 10 s). torch is allowed where an NVIDIA driver is present: the start then checks that torch can
use the GPU, as A1111 does."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from modules.devices import nvidia_driver_present
from modules.pipelines.demo import ensure_demo_checkpoint
from tests.helpers.server import ROOT, _env

pytestmark = pytest.mark.server

# cv2 is not here: the Real-ESRGAN availability check imports it (~0.1 s) when A1111 scripts list the
# upscalers at load; gradio is needed to build the app. torch is 2-3 s of CPU here: the device is detected
# when the first model loads (modules.devices.DeviceProbe), and the start path imports torch nowhere else.
HEAVY = ("diffusers", "transformers", "peft", "onnxruntime", "spandrel", "accelerate", "torchsde", "scipy",
         *(() if nvidia_driver_present() else ("torch",)))

# Runs in a fresh interpreter (this one has diffusers imported already). The context is built as serve()
# builds it, with the model load held, so only start-up's own imports are seen.
SCRIPT = r"""
import json, sys
from pathlib import Path
root, data = Path(sys.argv[1]), sys.argv[2]
sys.path.insert(0, str(root))
import webui.server as server
from modules.context import build_context
from modules.flags import parse_flags
from webui.a1111.modules import a1111_ui_modules

flags = parse_flags(["--skip-install", "--api", "--data-dir", data, "--no-download-sd-model"], project_root=root)
after_import = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
ctx = build_context(flags, root, a1111_modules=a1111_ui_modules())
after_context = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
app = server.create_app(ctx)
after_app = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
ctx.close()
print(json.dumps({"import": after_import, "context": after_context, "app": after_app,
                  "gradio": "gradio" in sys.modules}))
"""


def _tops(names: list[str]) -> list[str]:
    return sorted({n.split(".")[0] for n in names})


def test_building_context_and_ui_imports_no_model_library(tmp_path):
    data = tmp_path / "data"
    ensure_demo_checkpoint(data / "models" / "Stable-diffusion")  # a second start: the file is on disk
    script = f"HEAVY = {HEAVY!r}\n{SCRIPT}"
    out = subprocess.run([sys.executable, "-c", script, str(ROOT), str(data)], cwd=ROOT, env=_env(None),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["gradio"], "the UI was not built"
    assert _tops(seen["import"]) == [], "importing webui.server"
    assert _tops(seen["context"]) == [], "building the context"
    assert _tops(seen["app"]) == [], "building the API and the UI"
