"""A failed job lets go of everything its function held; the worker survives any exception; cleanup runs.

After a CUDA OOM the failed job's latents and activations must not stay alive in the job history (through
the traceback's frames), or the next, smaller job runs out of memory too.
"""
from __future__ import annotations

import gc
import threading
import weakref

import pytest

from modules.jobs.queue import JobQueue
from modules.types import UserInputError

WAIT = 10.0  # seconds; a safety net against hangs only


class Big:
    """Stands for a latent tensor or a UNet activation: something only a weakref may see afterwards."""


@pytest.fixture
def queue():
    q = JobQueue(history_size=100)
    yield q
    q.shutdown(timeout=WAIT)


def run_failing(queue: JobQueue, make_error=lambda: RuntimeError("CUDA out of memory")):
    refs = []

    def inner(ctx):
        activations = Big()  # a local of a deeper frame, as inside the UNet
        refs.append(weakref.ref(activations))
        raise make_error()

    def job_fn(ctx):
        latents = Big()
        refs.append(weakref.ref(latents))
        inner(ctx)

    job = queue.submit("txt2img", job_fn)
    assert job.wait(WAIT)
    gc.collect()
    return job, refs


def test_a_failed_job_keeps_its_message_and_type_but_not_its_frames(queue):
    job, refs = run_failing(queue)
    assert job.state == "failed" and job.error == "CUDA out of memory"
    assert isinstance(job.exception, RuntimeError) and job.error_type == "RuntimeError"
    assert queue.get(job.id) is job  # still in the history...
    assert [ref() for ref in refs] == [None, None]  # ...but the locals of every frame are gone
    assert job.exception.__traceback__ is None
    assert "in inner" in job.traceback and "CUDA out of memory" in job.traceback  # a summary for the log


def test_chained_exceptions_let_go_of_their_frames_too(queue):
    def make_error():
        try:
            raise KeyError("cause")
        except KeyError:
            raise ValueError("while handling") from OSError("disk")

    job, refs = run_failing(queue, make_error)
    assert job.error == "while handling" and isinstance(job.exception.__cause__, OSError)
    assert [ref() for ref in refs] == [None, None]
    assert job.exception.__context__.__traceback__ is None


def test_user_input_errors_keep_their_field(queue):
    job, _ = run_failing(queue, lambda: UserInputError("bad width", field="width"))
    assert isinstance(job.exception, UserInputError) and job.exception.field == "width"


def test_an_exception_whose_str_raises_fails_the_job_and_not_the_worker(queue):
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no str for you")

        def __repr__(self):
            raise RuntimeError("no repr either")

    def boom(ctx):
        raise Unprintable()

    failed = queue.submit("t", boom)
    after = queue.submit("t", lambda ctx: "still alive")
    assert after.wait_result(WAIT) == "still alive", "the worker died"
    assert failed.state == "failed" and "Unprintable" in failed.error
    assert failed.error_type == "Unprintable"


def test_after_failure_runs_once_per_failure_once_the_frames_are_gone():
    seen = []
    refs = []

    def cleanup(job):
        gc.collect()
        seen.append((job.id, job.state, [ref() for ref in refs]))

    q = JobQueue(after_failure=cleanup)
    try:
        def fails(ctx):
            latents = Big()
            refs.append(weakref.ref(latents))
            raise MemoryError("out of memory")

        failed = q.submit("t", fails)
        ok = q.submit("t", lambda ctx: 1)
        assert ok.wait(WAIT) and failed.state == "failed"
        # It ran before the job was marked finished and saw the locals already gone (so it can free them).
        assert seen == [(failed.id, "running", [None])]
    finally:
        q.shutdown(timeout=WAIT)


def test_a_cleanup_that_raises_does_not_kill_the_worker():
    def cleanup(job):
        raise RuntimeError("cleanup broke")

    q = JobQueue(after_failure=cleanup)
    try:
        failed = q.submit("t", lambda ctx: 1 / 0)
        after = q.submit("t", lambda ctx: "alive")
        assert after.wait_result(WAIT) == "alive"
        assert failed.state == "failed" and failed.error == "division by zero"
    finally:
        q.shutdown(timeout=WAIT)


def test_a_finished_job_drops_its_function(queue):
    """The closure holds the request (init images, masks): it has no use once the job ran."""
    payload = Big()
    ref = weakref.ref(payload)
    job = queue.submit("t", lambda ctx, p=payload: None)
    del payload
    assert job.wait(WAIT)
    gc.collect()
    assert ref() is None


def test_worker_thread_is_still_the_same_after_failures(queue):
    worker = queue._worker
    for _ in range(3):
        run_failing(queue)
    assert worker.is_alive() and queue._worker is worker and threading.active_count() >= 1


def test_a_bad_value_is_one_warning_line_and_a_fault_keeps_its_traceback_in_the_log(queue, caplog):
    # A wrong checkpoint name in a request is the user's to fix: an ERROR with a traceback for each one
    # buried real faults in the server log.
    with caplog.at_level("WARNING", logger="webui.jobs"):
        run_failing(queue, lambda: UserInputError("no checkpoint matches 'nothere'", field="sd_model_checkpoint"))
        run_failing(queue)
    refused, failed = caplog.records
    assert refused.levelname == "WARNING" and "Traceback" not in refused.getMessage()
    assert refused.getMessage().endswith("refused: sd_model_checkpoint: no checkpoint matches 'nothere'")
    assert failed.levelname == "ERROR" and "Traceback" in failed.getMessage()
    assert "CUDA out of memory" in failed.getMessage()
