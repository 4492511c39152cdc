"""Blocking work stays off the event loop: while POST /options waits for the pipeline manager (a model load
holds its lock), the rest of the server - /progress, /interrupt - still answers at once. In-process."""
from __future__ import annotations

import threading
import time

import pytest

from tests.api.inprocess import build_app, build_ctx, local_client


@pytest.fixture(scope="module")
def app_ctx(tmp_path_factory):
    ctx = build_ctx(tmp_path_factory.mktemp("loop"))
    app = build_app(ctx)
    with local_client(app) as client:
        yield client, ctx
    ctx.close()


def _hold_lock(lock, held: threading.Event, release: threading.Event) -> None:
    with lock:
        held.set()
        release.wait(30)


def test_options_waiting_on_the_manager_does_not_freeze_the_server(app_ctx):
    client, ctx = app_ctx
    held, release = threading.Event(), threading.Event()
    # What a model load does for seconds to minutes: hold the pipeline manager's lock.
    holder = threading.Thread(target=_hold_lock, args=(ctx.pipelines._lock, held, release), daemon=True)
    holder.start()
    assert held.wait(5)
    answers = {}
    poster = threading.Thread(target=lambda: answers.update(r=client.post("/sdapi/v1/options",
                                                                                 json={"sd_checkpoint_cache": 1})),
                              daemon=True)
    try:
        poster.start()
        time.sleep(0.3)  # the POST is now waiting on the lock (the cache size changes under it)
        started = time.monotonic()
        assert client.get("/sdapi/v1/progress").status_code == 200
        assert client.post("/sdapi/v1/interrupt", json={}).status_code == 200
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        holder.join(10)
        poster.join(30)
    assert answers["r"].status_code == 200 and ctx.settings.get("sd_checkpoint_cache") == 1
