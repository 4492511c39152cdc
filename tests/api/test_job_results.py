"""Job-API results are kept until the client collects them: submit 150 jobs, collect 150 results, even though
the queue's own history holds 100 jobs. Memory stays bounded by dropping finished calls only: collected
ones after a grace time, uncollected ones after the retention time or past a count; never a queued or
running one. In-process (Extras jobs need no model, so 150 of them take about a second)."""
from __future__ import annotations

import threading

import pytest
from PIL import Image

from tests.api.inprocess import blocked_queue, build_app, build_ctx, local_client, png_b64
from webui.api.calls import ApiCall, ApiCalls

EXTRAS = {"upscaler_1": "None", "upscaling_resize": 1}


@pytest.fixture(scope="module")
def app_ctx(tmp_path_factory):
    ctx = build_ctx(tmp_path_factory.mktemp("jobs"))
    app = build_app(ctx)
    with local_client(app) as client:
        yield client, ctx
    ctx.close()


def test_submit_150_collect_150(app_ctx):
    client, ctx = app_ctx
    image = png_b64(Image.new("RGB", (8, 8), (10, 20, 30)))
    with blocked_queue(ctx):  # all 150 are queued at once, as behind a long job
        ids = []
        for _ in range(150):
            answer = client.post("/sdapi/v1/jobs/extra-single-image", json={"image": image, **EXTRAS})
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])
    for job_id in ids:
        status = client.get(f"/sdapi/v1/jobs/{job_id}")
        assert status.status_code == 200, (ids.index(job_id), status.text)
        result = client.get(f"/sdapi/v1/jobs/{job_id}/result", params={"wait": 30})
        assert result.status_code == 200, (ids.index(job_id), result.text)
        assert result.json()["image"]
    # A collected result can be fetched again for a while (a client retrying after a lost answer).
    assert client.get(f"/sdapi/v1/jobs/{ids[0]}/result").status_code == 200


@pytest.fixture
def queue():
    from modules.jobs.queue import JobQueue

    jobs = JobQueue(history_size=1000)
    yield jobs
    jobs.shutdown()


def _calls_of(jobs, count: int, fn=lambda job_ctx: None) -> list[ApiCall]:
    return [ApiCall(jobs.submit("test", fn), finish=lambda job: None) for _ in range(count)]


def _finished_calls(count: int) -> list[ApiCall]:
    from modules.jobs.queue import JobQueue

    jobs = JobQueue()
    try:
        calls = _calls_of(jobs, count)
        assert all(call.job.wait(10) for call in calls)
    finally:
        jobs.shutdown()
    return calls


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_queued_and_running_calls_are_never_dropped(queue):
    calls = ApiCalls(max_finished=5)
    release = threading.Event()
    waiting = _calls_of(queue, 300, lambda job_ctx: release.wait(30))
    for call in waiting:
        calls.add(call)
    try:
        assert all(calls.get(call.job.id) is call for call in waiting)
    finally:
        release.set()


def test_finished_calls_are_dropped_by_count_and_age_collected_first(queue):
    clock = Clock()
    calls = ApiCalls(max_finished=3, retention_s=100, collected_grace_s=10, clock=clock)
    release = threading.Event()
    pending = _calls_of(queue, 1, lambda job_ctx: release.wait(30))[0]
    try:
        calls.add(pending)
        done = _finished_calls(6)
        d = {f"d{i}": call for i, call in enumerate(done)}
        for name in ("d0", "d1", "d2"):
            calls.add(d[name])
        calls.mark_collected(d["d1"].job.id)
        clock.now += 11  # d1's grace is over: dropped; the uncollected ones stay
        calls.add(d["d3"])
        assert calls.get(d["d1"].job.id) is None
        assert calls.get(d["d0"].job.id) is d["d0"] and calls.get(d["d2"].job.id) is d["d2"]
        calls.add(d["d4"])  # four finished, three allowed: the oldest finished one goes
        assert calls.get(d["d0"].job.id) is None and calls.get(d["d4"].job.id) is d["d4"]
        clock.now += 101  # past retention: every finished call goes, the unfinished one stays
        calls.add(d["d5"])
        assert [n for n in ("d2", "d3", "d4") if calls.get(d[n].job.id) is not None] == []
        assert calls.get(pending.job.id) is pending and calls.get(d["d5"].job.id) is d["d5"]
    finally:
        release.set()
