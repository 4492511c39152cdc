"""API tests: a real server process (`launch.py --nowebui`) shared by the session, two tiny checkpoints in
its data dir (the demo model and the tiny SD1.5 fixture), driven over HTTP with the `webuiapi` client from
PyPI."""
from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from modules.images.infotext import parse_infotext
from tests.helpers.server import ROOT, ServerProcess, free_port

DEMO = "demo-tiny-sd15.safetensors"
TINY = "tiny-sd15.safetensors"
AUTH = ("apiuser", "s3cret")
# One torch thread in the server: tiny models on a shared 2-core box run much faster without contention.
SERVER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SMALL = {"width": 64, "height": 64, "steps": 2}


def make_data_dir(root: Path, tiny) -> Path:
    """A data dir holding the demo checkpoint and a copy of the tiny SD1.5 checkpoint (+ its config)."""
    from modules.pipelines.demo import ensure_demo_checkpoint

    ckpt_dir = root / "models" / "Stable-diffusion"
    ensure_demo_checkpoint(ckpt_dir)
    shutil.copy2(tiny.path, ckpt_dir / TINY)
    shutil.copytree(tiny.config_dir, ckpt_dir / tiny.config_dir.name)
    return root


def launch(root: Path, tiny, *extra: str, auth: tuple[str, str] | None = None,
           timeout: float = 180) -> ServerProcess:
    """Start `launch.py --nowebui` on a fresh data dir; ready once the API answers and the model is loaded.

    Not tests.helpers.server.start_server: that one polls without credentials, which --api-auth refuses.
    """
    data = make_data_dir(root / "data", tiny)
    port = free_port()
    log_path = root / f"server-{port}.log"
    args = [sys.executable, str(ROOT / "launch.py"), "--skip-install", "--port", str(port), "--nowebui",
            "--data-dir", str(data), "--no-download-sd-model", *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **SERVER_ENV}
    env.pop("COMMANDLINE_ARGS", None)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = ServerProcess(proc, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()[-4000:]}")
        try:
            if requests.get(server.url + "/sdapi/v1/samplers", auth=auth, timeout=5).status_code == 200:
                wait_model_loaded(server, auth)
                return server
        except requests.RequestException:
            pass
        time.sleep(0.3)
    server.stop()
    raise TimeoutError(f"server did not start in {timeout}s:\n{server.log()[-4000:]}")


def wait_model_loaded(server: ServerProcess, auth=None, timeout: float = 120) -> None:
    """The model loads on the job worker after start-up; wait until the queue is idle."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = requests.get(server.url + "/sdapi/v1/jobs", auth=auth, timeout=10).json()
        if all(j["state"] not in ("queued", "running") for j in jobs["jobs"]):
            return
        time.sleep(0.2)
    raise TimeoutError("the initial model did not load")


def decode(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def png_b64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def params_of(image: Image.Image) -> dict:
    """The image's `parameters` chunk parsed as A1111 parses it."""
    assert "parameters" in image.info, f"no parameters chunk in {image.info}"
    return parse_infotext(image.info["parameters"])


@pytest.fixture(scope="session")
def server(tmp_path_factory, tiny_sd15_checkpoint):
    """One API-only server for the session (a start costs 10-40 s on the shared box): a module that changes
    options puts them back; one that needs other flags starts its own with `launch`."""
    root = tmp_path_factory.mktemp("api-server")
    proc = launch(root, tiny_sd15_checkpoint)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def api(server):
    import webuiapi

    return webuiapi.WebUIApi(host="127.0.0.1", port=server.port, sampler="Euler", steps=2)
