"""In-process API apps for fast tests: the real `create_app` on a real AppContext (demo checkpoint in a fresh
data dir), driven with Starlette's TestClient or served by a real uvicorn server on a thread."""
from __future__ import annotations

import base64
import io
import struct
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from modules.context import AppContext, build_context, load_initial_model
from modules.flags import Flags
from tests.helpers.server import free_port, keep_demo_checkpoint, seed_demo_into

# Host the test client sends: the default "testserver" is a foreign name to a local (no --listen) server.
LOCAL_URL = "http://127.0.0.1:7860"


def build_ctx(root: Path, *, load_model: bool = False, **flag_values) -> AppContext:
    """A context on `root` (demo checkpoint written there); the model loaded when asked."""
    flags = replace(Flags(nowebui=True, no_download_sd_model=True), data_dir=str(root / "data"), **flag_values)
    seeded = seed_demo_into(root / "data") if flags.ckpt is None and flags.ckpt_dir is None else None
    ctx = build_context(flags, root)
    if seeded is not None:
        keep_demo_checkpoint(seeded)  # building and writing the demo file costs 1-3 s of every context
    if load_model:
        load_initial_model(ctx)
    return ctx


def build_app(ctx: AppContext):
    from webui.server import create_app

    return create_app(ctx)


def local_client(app, **kwargs) -> TestClient:
    return TestClient(app, base_url=LOCAL_URL, **kwargs)


@contextmanager
def blocked_queue(ctx: AppContext):
    """Occupy the job worker with a job that waits until the block ends, so later jobs stay queued."""
    release = threading.Event()
    started = threading.Event()

    def hold(job_ctx):
        started.set()
        release.wait(60)

    job = ctx.jobs.submit("test-block", hold, description="test: hold the worker")
    assert started.wait(10), "the worker did not start the blocking job"
    try:
        yield job
    finally:
        release.set()
        job.wait(10)


def wait_until(predicate, timeout: float = 20.0, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError("condition not met in time")


def png_b64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def huge_png(width: int, height: int) -> bytes:
    """A valid 1-bit black PNG of width x height pixels in a few KB (a decompression bomb when large)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    rows_per_piece = max(1, (1 << 20) // len(row))
    parts = []
    for start in range(0, height, rows_per_piece):
        parts.append(packer.compress(row * min(rows_per_piece, height - start)))
    parts.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


class ThreadedServer:
    """A real uvicorn server for `app` on 127.0.0.1 in a background thread (real sockets, real disconnects)."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="test-uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=20)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
