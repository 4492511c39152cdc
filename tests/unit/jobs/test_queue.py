"""JobQueue: FIFO order, cancel, interrupt/skip of the running job, failures, history. Events, no timing."""
from __future__ import annotations

import threading
import time

import pytest

from modules.jobs.progress import JobContext, JobInterrupted
from modules.jobs.queue import JobQueue

WAIT = 10.0  # seconds; only a safety net against hangs, never part of an assertion


@pytest.fixture
def queue():
    q = JobQueue(history_size=100)
    yield q
    q.shutdown(timeout=WAIT)


def gate_job(queue: JobQueue):
    """Submit a job that holds the worker until the returned event is set (so others pile up)."""
    started, release = threading.Event(), threading.Event()

    def hold(ctx):
        started.set()
        assert release.wait(WAIT)

    job = queue.submit("gate", hold)
    assert started.wait(WAIT)
    return job, release


def step_loop(steps: int, images: int = 1, *, pause_at: tuple[int, int] | None = None,
              reached: threading.Event | None = None, resume: threading.Event | None = None,
              log: list | None = None, sleep: float = 0.001):
    """A fake sampler: `images` batches of `steps` steps, each step sleeps, reports and checks.

    At (image, step) == pause_at it sets `reached` and waits for `resume`, so a test can act at an exact
    step. Returns the indices of finished batches, as a generation function returns finished images.
    """
    def run(ctx: JobContext):
        ctx.set_total(steps, images)
        finished = []
        try:
            for image in range(images):
                ctx.check()  # an interrupt between batches
                with ctx.batch(image) as scope:
                    for step in range(steps):
                        time.sleep(sleep)
                        ctx.step(step)
                        if log is not None:
                            log.append((image, step))
                        if pause_at == (image, step):
                            reached.set()
                            assert resume.wait(WAIT)
                        ctx.check()
                if scope.completed:
                    finished.append(image)
        except JobInterrupted:
            pass  # keep the finished batches
        return finished

    return run


def test_fifo_order_with_many_submitters_from_threads(queue):
    gate, release = gate_job(queue)
    ran, submitted, order_lock = [], [], threading.Lock()

    def submitter(thread_no: int):
        for seq in range(25):
            with order_lock:  # makes "submission order" well-defined across threads
                job = queue.submit("t", lambda ctx, key=(thread_no, seq): ran.append(key))
                submitted.append((job, (thread_no, seq)))

    threads = [threading.Thread(target=submitter, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    # Everything waits behind the gate: positions count the jobs ahead, the running gate included.
    assert gate.position == 0 and gate.state == "running"
    assert [job.position for job, _ in submitted] == list(range(1, 201))
    assert queue.pending == 200
    release.set()
    assert all(job.wait(WAIT) for job, _ in submitted)
    assert ran == [key for _, key in submitted]
    assert all(job.state == "done" and job.position is None for job, _ in submitted)


def test_job_ids_are_short_unique_hex(queue):
    jobs = [queue.submit("t", lambda ctx: None) for _ in range(50)]
    ids = {job.id for job in jobs}
    assert len(ids) == 50
    assert all(len(i) == 12 and int(i, 16) >= 0 for i in ids)
    assert all(queue.get(job.id) is job for job in jobs)
    assert queue.get("nope") is None


def test_cancel_queued_job_removes_it_and_renumbers(queue):
    _gate, release = gate_job(queue)
    ran = []
    a = queue.submit("t", lambda ctx: ran.append("a"))
    b = queue.submit("t", lambda ctx: ran.append("b"))
    c = queue.submit("t", lambda ctx: ran.append("c"))
    assert queue.cancel(b.id) is True
    assert b.state == "cancelled" and b.finished and b.finished_at is not None and b.started_at is None
    assert (a.position, c.position) == (1, 2)
    release.set()
    assert c.wait(WAIT)
    assert ran == ["a", "c"]
    assert queue.cancel(b.id) is False  # already finished
    assert queue.cancel(c.id) is False
    assert queue.get(b.id) is b  # kept in history


def test_interrupt_stops_running_job_within_one_step_and_keeps_finished_images(queue):
    reached, resume, log = threading.Event(), threading.Event(), []
    job = queue.submit("txt2img", step_loop(10, images=3, pause_at=(1, 3), reached=reached, resume=resume,
                                           log=log))
    assert reached.wait(WAIT)
    assert queue.current() is job
    assert queue.interrupt() is True
    resume.set()
    assert job.wait(WAIT)
    # The step in progress when interrupt came was the last one run; batch 0 finished and is kept.
    assert log[-1] == (1, 3)
    assert job.state == "interrupted" and job.result == [0] and job.error is None
    assert queue.current() is None and queue.interrupt() is False and queue.skip() is False


def test_cancel_running_job_interrupts_it(queue):
    reached, resume = threading.Event(), threading.Event()
    job = queue.submit("t", step_loop(10, pause_at=(0, 2), reached=reached, resume=resume))
    assert reached.wait(WAIT)
    assert queue.cancel(job.id) is True
    resume.set()
    assert job.wait(WAIT) and job.state == "interrupted"


def test_skip_abandons_current_batch_and_continues_with_next(queue):
    reached, resume, log = threading.Event(), threading.Event(), []
    job = queue.submit("t", step_loop(5, images=3, pause_at=(1, 2), reached=reached, resume=resume, log=log))
    assert reached.wait(WAIT)
    assert queue.skip() is True
    resume.set()
    assert job.wait(WAIT)
    assert job.state == "done" and job.result == [0, 2]
    assert [s for i, s in log if i == 1] == [0, 1, 2]
    assert [s for i, s in log if i == 2] == [0, 1, 2, 3, 4]  # the skip did not leak into batch 2


def test_stop_requests_do_not_leak_into_the_next_job(queue):
    reached, resume = threading.Event(), threading.Event()
    first = queue.submit("t", step_loop(5, images=1, pause_at=(0, 4), reached=reached, resume=resume))
    second = queue.submit("t", step_loop(5, images=2))
    assert reached.wait(WAIT)
    queue.skip()  # pressed on the last step: nothing after it to skip within the first job
    resume.set()
    assert second.wait(WAIT)
    assert first.state == "done" and first.result == []
    assert second.state == "done" and second.result == [0, 1]


def test_uncaught_interrupt_marks_job_interrupted(queue):
    def raises(ctx):
        ctx.request_interrupt()
        ctx.check()

    job = queue.submit("t", raises)
    assert job.wait(WAIT) and job.state == "interrupted" and job.result is None and job.error is None


def test_exceptions_become_failed_jobs_and_worker_survives(queue):
    def boom(ctx):
        raise ValueError("bad width: 13")

    def exits(ctx):
        raise SystemExit(3)

    failed = queue.submit("t", boom)
    exited = queue.submit("t", exits)
    after = queue.submit("t", lambda ctx: "still alive")
    assert after.wait_result(WAIT) == "still alive"
    assert failed.state == "failed" and failed.error == "bad width: 13"
    assert isinstance(failed.exception, ValueError) and failed.result is None
    assert exited.state == "failed" and isinstance(exited.exception, SystemExit)
    assert after.state == "done"


def test_timestamps_and_duration(queue):
    job = queue.submit("t", lambda ctx: None, description="noop")
    assert job.wait(WAIT)
    assert job.created_at <= job.started_at <= job.finished_at
    assert job.duration >= 0 and job.description == "noop" and job.kind == "t"


def test_history_is_bounded_and_list_is_in_submission_order():
    q = JobQueue(history_size=5)
    try:
        jobs = [q.submit("t", lambda ctx, i=i: i) for i in range(12)]
        assert jobs[-1].wait(WAIT)
        assert q.list() == jobs[-5:]
        assert q.get(jobs[0].id) is None and q.get(jobs[-1].id).result == 11
    finally:
        q.shutdown(timeout=WAIT)


def test_wait_by_id(queue):
    _gate, release = gate_job(queue)
    job = queue.submit("t", lambda ctx: 1)
    assert queue.wait(job.id, timeout=0.01) is False
    with pytest.raises(TimeoutError):
        job.wait_result(timeout=0.01)
    release.set()
    assert queue.wait(job.id, timeout=WAIT) is True
    with pytest.raises(KeyError):
        queue.wait("missing")


def test_worker_cannot_wait_for_a_later_job(queue):
    def waits(ctx):
        later = queue.submit("t", lambda c: None)
        queue.wait(later.id)

    job = queue.submit("t", waits)
    assert job.wait(WAIT) and job.state == "failed" and "cannot wait" in job.error


def test_shutdown_cancels_queued_interrupts_running_and_refuses_new_jobs():
    q = JobQueue()
    reached, resume = threading.Event(), threading.Event()
    running = q.submit("t", step_loop(10, pause_at=(0, 1), reached=reached, resume=resume))
    queued = q.submit("t", lambda ctx: None)
    assert reached.wait(WAIT)
    closer = threading.Thread(target=q.shutdown, kwargs={"timeout": WAIT})
    closer.start()
    assert running.context._interrupt.wait(WAIT)  # shutdown asked the paused job to stop
    resume.set()
    closer.join(WAIT)
    assert queued.state == "cancelled" and running.state == "interrupted"
    assert q.closed and not q._worker.is_alive()
    with pytest.raises(RuntimeError, match="shut down"):
        q.submit("t", lambda ctx: None)


def test_queue_snapshot_follows_the_running_job(queue):
    assert queue.snapshot() is None
    reached, resume = threading.Event(), threading.Event()
    job = queue.submit("t", step_loop(4, images=2, pause_at=(1, 1), reached=reached, resume=resume))
    assert reached.wait(WAIT)
    snap = queue.snapshot()
    assert (snap.job_id, snap.state, snap.image_index, snap.step, snap.steps_total) == (job.id, "running", 1, 2, 4)
    assert snap.progress == pytest.approx((1 + 2 / 4) / 2)
    resume.set()
    assert job.wait(WAIT)
    final = job.snapshot()
    assert final.state == "done" and final.progress == 1.0 and final.eta_relative == 0.0


def test_preview_setting_is_read_when_a_job_is_submitted(queue):
    queue.preview_every_n_steps = 3
    queue.preview_scale = 2
    job = queue.submit("t", lambda ctx: (ctx.preview_every_n_steps, ctx.preview_scale))
    assert job.wait_result(WAIT) == (3, 2)


def test_job_interrupted_is_not_an_exception_subclass():
    # Hooks wrapped in `except Exception` must not be able to swallow a stop request.
    assert not issubclass(JobInterrupted, Exception)


def test_preview_decoder_is_handed_to_each_job(queue):
    # The app's TAESD/cheap choice (taesd.PreviewDecoders) reaches the job's context with the other settings.
    def decoder(latents, family):
        return latents

    queue.preview_decoder = decoder
    job = queue.submit("t", lambda ctx: ctx.preview_decoder)
    assert job.wait_result(WAIT) is decoder
