"""UI generations waiting in the job queue hold no server thread: with the worker busy and 41 Generate events
waiting (one more than the 40 threads that every sync route and sync Gradio handler share), a sync API route
and a sync UI event still answer at once. Driven over HTTP, as 41 browser tabs would drive it."""
from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.helpers.server import start_server
from tests.ui.gradio_http import GradioPage, messages

pytestmark = [pytest.mark.server]

WAITING = 41
LONG = {"prompt": "hold the worker", "width": 64, "height": 64, "steps": 1000, "n_iter": 20}  # minutes


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("queue-threads")
    srv = start_server(["--data-dir", str(data), "--no-download-sd-model", "--api"], data)
    yield srv
    srv.stop()


def jobs(url: str) -> list[dict]:
    return requests.get(url + "/sdapi/v1/jobs", timeout=30).json()["jobs"]


def wait_until(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    return predicate()


class Stream(threading.Thread):
    """One page's Generate: joins the event and keeps its message stream open, counting updates."""

    def __init__(self, page: GradioPage, dep: dict, data: list):
        super().__init__(daemon=True)
        self.page, self.dep, self.data = page, dep, data
        self.updates = 0
        self.joined: int | None = None
        self.stop = threading.Event()

    def run(self):
        self.joined = self.page.join(self.dep, self.data).status_code
        with self.page.stream(timeout=120) as response:
            for message in messages(response):
                if message.get("msg") == "process_generating":
                    self.updates += 1
                if self.stop.is_set() or message.get("msg") == "process_completed":
                    return


def timed(call) -> tuple[float, int]:
    started = time.perf_counter()
    try:
        status = call().status_code
    except requests.Timeout:
        status = 0
    return time.perf_counter() - started, status


def test_41_waiting_generations_leave_sync_routes_responsive(server):
    url = server.url
    wait_until(lambda: all(j["state"] not in ("queued", "running") for j in jobs(url)), 120)
    blocker = requests.post(url + "/sdapi/v1/jobs/txt2img", json=LONG, timeout=30).json()
    assert wait_until(lambda: requests.get(f"{url}/sdapi/v1/jobs/{blocker['id']}", timeout=30).json()["state"]
                      == "running", 60)
    first = GradioPage(url)
    dep = first.dependency("txt2img_generate", "click")
    data = first.default_inputs(dep)
    for elem_id, value in (("txt2img_width", 64), ("txt2img_height", 64), ("txt2img_steps", 1)):
        first.set_input(dep, data, elem_id, value)
    streams = [Stream(GradioPage(url, config=first.config), dep, data) for _ in range(WAITING)]
    try:
        for stream in streams:
            stream.start()
        # Every stream has shown "Waiting in queue" once; then they wait for the busy worker.
        wait_until(lambda: all(s.updates for s in streams), 30)
        time.sleep(1.5)
        options = timed(lambda: requests.get(url + "/sdapi/v1/options", timeout=10))
        counter = first.dependency("txt2img_prompt", "change")
        sync_event = timed(lambda: requests.post(url + "/gradio_api/run/predict", timeout=10, json={
            "data": ["a cat"], "fn_index": counter["id"], "session_hash": first.session_hash,
            "trigger_id": counter["targets"][0][0], "event_data": None}))
        print(f"{WAITING} waiting: GET /sdapi/v1/options {options[0]:.2f} s, sync UI event {sync_event[0]:.2f} s")
        assert options[1] == 200 and options[0] < 2.0, f"GET /sdapi/v1/options took {options[0]:.1f} s"
        assert sync_event[1] == 200 and sync_event[0] < 2.0, f"a sync UI event took {sync_event[0]:.1f} s"
        assert [s.joined for s in streams] == [200] * WAITING
        assert len([j for j in jobs(url) if j["state"] == "queued"]) == WAITING
    finally:
        release(url, blocker, streams)


def release(url: str, blocker: dict, streams: list[Stream]) -> None:
    """Cancel the blocker: the tiny queued jobs then finish in seconds and every stream ends."""
    for stream in streams:
        stream.stop.set()
    try:
        requests.delete(f"{url}/sdapi/v1/jobs/{blocker['id']}", timeout=10)
    except requests.RequestException:
        pass  # a starved server (the bug) cannot answer; stopping it ends everything
    deadline = time.monotonic() + 30
    for stream in streams:
        stream.join(max(0.1, deadline - time.monotonic()))
