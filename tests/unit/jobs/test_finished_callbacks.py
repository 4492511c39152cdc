"""Job.on_finished: an async waiter (the UI's progress stream) is woken by the job's end, no polling needed."""
from __future__ import annotations

import threading

import pytest

from modules.jobs.queue import JobQueue

WAIT = 10.0  # seconds; only a safety net against hangs, never part of an assertion


@pytest.fixture
def queue():
    q = JobQueue(history_size=10)
    yield q
    q.shutdown(timeout=WAIT)


def held_job(queue: JobQueue):
    started, release = threading.Event(), threading.Event()

    def hold(ctx):
        started.set()
        assert release.wait(WAIT)
        return "done"

    job = queue.submit("held", hold)
    assert started.wait(WAIT)
    return job, release


def test_callback_runs_once_when_the_job_finishes_with_its_result_set(queue):
    job, release = held_job(queue)
    seen, called = [], threading.Event()
    job.on_finished(lambda j: (seen.append((j.finished, j.state, j.result)), called.set()))
    assert seen == []  # still running
    release.set()
    assert called.wait(WAIT)
    assert seen == [(True, "done", "done")]


def test_callback_on_a_finished_job_runs_at_once_on_the_callers_thread(queue):
    job = queue.submit("quick", lambda ctx: 1)
    assert job.wait(WAIT)
    threads = []
    job.on_finished(lambda j: threads.append(threading.current_thread()))
    assert threads == [threading.current_thread()]


def test_cancelled_and_shut_down_jobs_call_back_too():
    q = JobQueue()
    gate, release = held_job(q)
    queued, pending = q.submit("a", lambda ctx: None), q.submit("b", lambda ctx: None)
    states = {}
    queued.on_finished(lambda j: states.setdefault("a", j.state))
    pending.on_finished(lambda j: states.setdefault("b", j.state))
    q.cancel(queued.id)
    assert states == {"a": "cancelled"}
    release.set()
    q.shutdown(cancel_pending=True, timeout=WAIT)
    assert states["b"] in ("cancelled", "done")  # shutdown may race the worker picking it up


def test_a_failing_callback_neither_stops_the_worker_nor_the_others(queue):
    job, release = held_job(queue)
    later = []
    job.on_finished(lambda j: 1 / 0)
    job.on_finished(lambda j: later.append(j.id))
    release.set()
    assert job.wait(WAIT)
    assert queue.submit("next", lambda ctx: "ok").wait_result(WAIT) == "ok"
    assert later == [job.id]
