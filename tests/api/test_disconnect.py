"""A synchronous request whose client went away stops its job (setting api_cancel_on_disconnect, on by
default): queued, it is cancelled; running, it is interrupted; nothing is encoded for nobody. And the queue
has a limit (api_queue_limit): past it the API answers 503 with a clear message, not an ever-longer wait.

Disconnects need a real server and a real socket (TestClient does not report them): uvicorn on a thread."""
from __future__ import annotations

import json
import socket

import pytest
from PIL import Image

from tests.api.inprocess import (
    ThreadedServer,
    blocked_queue,
    build_app,
    build_ctx,
    local_client,
    png_b64,
    wait_until,
)

SMALL = {"width": 64, "height": 64, "steps": 1}
LONG = {"prompt": "long", "width": 64, "height": 64, "steps": 1000}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    ctx = build_ctx(tmp_path_factory.mktemp("disconnect"), load_model=True)
    app = build_app(ctx)
    with ThreadedServer(app) as server:
        yield server, ctx
    ctx.close()


def open_request(port: int, path: str, body: dict, headers: str = "") -> socket.socket:
    """Send a POST on a raw socket and leave it open, as a client waiting for its answer."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{headers}"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return sock


def job_of(ctx, kind: str, state: str):
    return next((job for job in ctx.jobs.list() if job.kind == kind and job.state == state), None)


def test_a_queued_request_whose_client_left_is_cancelled(served):
    server, ctx = served
    with blocked_queue(ctx):
        sock = open_request(server.port, "/sdapi/v1/txt2img", {"prompt": "nobody waits", **SMALL})
        job = wait_until(lambda: job_of(ctx, "txt2img", "queued"))
        sock.close()
        wait_until(lambda: job.state == "cancelled", timeout=5)


def test_a_running_request_whose_client_left_is_interrupted(served):
    server, ctx = served
    sock = open_request(server.port, "/sdapi/v1/txt2img", LONG)
    try:
        job = wait_until(lambda: job_of(ctx, "txt2img", "running"), timeout=30)
        wait_until(lambda: job.snapshot().step >= 1, timeout=30)
    finally:
        sock.close()
    wait_until(lambda: job.finished, timeout=10)
    assert job.state == "interrupted" and job.snapshot().step < 1000


def test_img2img_and_extras_cancel_too_and_the_setting_turns_it_off(served):
    server, ctx = served
    image = png_b64(Image.new("RGB", (64, 64)))
    with blocked_queue(ctx):
        for path, body, kind in [("/sdapi/v1/img2img", {"init_images": [image], **SMALL}, "img2img"),
                                 ("/sdapi/v1/extra-single-image", {"image": image, "upscaler_1": "None"}, "extras")]:
            sock = open_request(server.port, path, body)
            job = wait_until(lambda: job_of(ctx, kind, "queued"))
            sock.close()
            wait_until(lambda: job.state == "cancelled", timeout=5)
        ctx.settings.update({"api_cancel_on_disconnect": False})
        try:
            sock = open_request(server.port, "/sdapi/v1/txt2img", {"prompt": "keep me", **SMALL})
            job = wait_until(lambda: job_of(ctx, "txt2img", "queued"))
            sock.close()
            with pytest.raises(TimeoutError):
                wait_until(lambda: job.state != "queued", timeout=1.5)
        finally:
            ctx.settings.update({"api_cancel_on_disconnect": True})
    wait_until(lambda: job.finished, timeout=30)
    assert job.state == "done"  # with the setting off, the job ran for its departed client


def test_a_disconnect_is_seen_behind_api_auth(tmp_path):
    import base64

    ctx = build_ctx(tmp_path, api_auth="u:p")
    try:
        with ThreadedServer(build_app(ctx)) as server, blocked_queue(ctx):
            token = base64.b64encode(b"u:p").decode()
            sock = open_request(server.port, "/sdapi/v1/txt2img", SMALL, headers=f"Authorization: Basic {token}\r\n")
            job = wait_until(lambda: job_of(ctx, "txt2img", "queued"))
            sock.close()
            wait_until(lambda: job.state == "cancelled", timeout=5)
    finally:
        ctx.close()


def test_a_full_queue_is_503_with_a_clear_message(tmp_path):
    ctx = build_ctx(tmp_path)
    app = build_app(ctx)
    ctx.settings.update({"api_queue_limit": 2})
    try:
        with local_client(app) as client, blocked_queue(ctx):
            for _ in range(2):
                assert client.post("/sdapi/v1/jobs/txt2img", json=SMALL).status_code == 202
            for path in ("/sdapi/v1/jobs/txt2img", "/sdapi/v1/txt2img"):
                refused = client.post(path, json=SMALL)
                assert refused.status_code == 503, refused.text
                detail = refused.json()["detail"]
                assert "queue is full" in detail and "2" in detail and "api_queue_limit" in detail
                assert refused.headers["Retry-After"].isdigit()
            assert ctx.jobs.pending == 2
    finally:
        ctx.close()
