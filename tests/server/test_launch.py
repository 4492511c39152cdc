"""The launcher as a user meets it: flags, bad input, first start with no checkpoint, API-only mode."""
from __future__ import annotations

import base64
import io
import json
import socket
import urllib.request

import pytest
from PIL import Image

from tests.helpers.needs import missing
from tests.helpers.server import run_launch, start_server

pytestmark = pytest.mark.server


def test_unknown_flag_is_one_clear_line():
    out = run_launch(["--skip-install", "--definitely-not-a-flag"])
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown flag: --definitely-not-a-flag" in lines[0]


def test_help_lists_every_flag_with_its_meaning():
    out = run_launch(["--help"])
    assert out.returncode == 0
    for flag in ("--exit", "--skip-install", "--use-cpu", "--medvram", "--medvram-sdxl", "--lowvram", "--xformers",
                 "--opt-sdp-attention", "--no-half", "--no-half-vae", "--precision", "--device-id",
                 "--skip-torch-cuda-test", "--listen", "--port", "--api", "--nowebui", "--gradio-auth",
                 "--api-auth", "--enable-insecure-extension-access", "--autolaunch", "--data-dir",
                 "--models-dir", "--ckpt", "--ckpt-dir", "--vae-dir", "--lora-dir", "--embeddings-dir",
                 "--controlnet-dir", "--no-download-sd-model"):
        assert flag in out.stdout, flag


def test_commandline_args_env_is_appended():
    out = run_launch(["--skip-install"], env={"COMMANDLINE_ARGS": "--not-a-real-flag"})
    assert out.returncode == 2 and "--not-a-real-flag" in out.stderr


def test_unwritable_data_dir_is_one_message(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = run_launch(["--skip-install", "--nowebui", "--data-dir", str(blocker / "data")])
    assert out.returncode == 1
    assert "error: data dir is not usable" in out.stderr and str(blocker) in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_ckpt_file_is_one_message(tmp_path):
    out = run_launch(["--skip-install", "--nowebui", "--data-dir", str(tmp_path), "--ckpt", str(tmp_path / "nope.safetensors")])
    assert out.returncode == 1 and "nope.safetensors: file not found" in out.stderr
    assert "Traceback" not in out.stderr


def _get_json(url: str, data: dict | None = None, timeout: float = 120):
    req = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_api_only_first_start_offline_uses_demo_and_generates(tmp_path):
    """--nowebui on a fresh data dir: download impossible -> demo checkpoint -> sd-models and txt2img work."""
    server = start_server(["--nowebui", "--data-dir", str(tmp_path)], tmp_path, ready_path="/sdapi/v1/sd-models")
    try:
        status, models = _get_json(server.url + "/sdapi/v1/sd-models")
        assert status == 200 and len(models) == 1 and "demo" in models[0]["model_name"]
        status, body = _get_json(server.url + "/sdapi/v1/txt2img",
                                 {"prompt": "a red cube", "steps": 2, "width": 64, "height": 64, "seed": 7})
        assert status == 200, body
        image = Image.open(io.BytesIO(base64.b64decode(body["images"][0])))
        assert image.size == (64, 64)
        assert "Seed: 7" in image.info["parameters"]
        log = server.log()
        assert "demo" in log.lower()
        # the failed download is one clear line, not a traceback
        assert "Traceback" not in log
    finally:
        server.stop()


def test_nowebui_defaults_to_port_7861(tmp_path):
    from modules.flags import parse_flags

    assert parse_flags(["--nowebui"], environ={}).server_port == 7861
    assert parse_flags([], environ={}).server_port == 7860
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 7861)) == 0:
            missing("port 7861 is taken on this machine")
    server = start_server(["--nowebui", "--data-dir", str(tmp_path), "--no-download-sd-model"], tmp_path,
                          ready_path="/sdapi/v1/sd-models", port=7861, pass_port=False)
    try:
        status, models = _get_json("http://127.0.0.1:7861/sdapi/v1/sd-models")
        assert status == 200 and models and models[0]["model_name"].startswith("demo")
    finally:
        server.stop()


def test_corrupt_checkpoint_keeps_app_up_and_names_the_file(tmp_path):
    ckpt_dir = tmp_path / "models" / "Stable-diffusion"
    ckpt_dir.mkdir(parents=True)
    (ckpt_dir / "broken.safetensors").write_bytes(b"\x00" * 64 + b"this is not a checkpoint")
    server = start_server(["--nowebui", "--data-dir", str(tmp_path), "--no-download-sd-model"], tmp_path,
                          ready_path="/sdapi/v1/sd-models")
    try:
        status, models = _get_json(server.url + "/sdapi/v1/sd-models")
        assert status == 200 and models[0]["model_name"] == "broken"
        status, body = _get_json(server.url + "/sdapi/v1/txt2img", {"prompt": "x", "steps": 1, "width": 64, "height": 64})
        assert status >= 400 and "broken.safetensors" in json.dumps(body)
        # still serving after the failure
        assert _get_json(server.url + "/sdapi/v1/sd-models")[0] == 200
        assert "broken.safetensors" in server.log()
    finally:
        server.stop()
