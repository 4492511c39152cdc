"""The job queue: one worker thread owns the GPU and runs jobs one at a time, first in, first out.

Everything that touches the model (generation, checkpoint switches) goes through here, so two requests
never race for the same pipeline or VRAM. The queue is an object owned by the AppContext (`ctx.jobs`);
nothing here is module-level state.

A job's function gets a `JobContext` (progress, previews, interrupt/skip checks). Whatever it raises is
kept on the Job as `error` (text), `error_type`, `traceback` (text) and `exception` (the object, its frames
freed), and the worker goes on with the next job. Finished jobs stay in a bounded history so the API can
still fetch a result after the job ended; they keep no frames and no function, so a failed generation's
tensors are freed at once. `after_failure(job)` (the AppContext passes: release offload hooks, free
memory) runs after every failure, before the job is marked finished.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modules.jobs.failure import detach_traceback, safe_str, safe_type_name
from modules.jobs.progress import JobContext, JobState, JobStopped, ProgressSnapshot
from modules.types import UserInputError

log = logging.getLogger("webui.jobs")

FINISHED_STATES: tuple[JobState, ...] = ("done", "failed", "cancelled", "interrupted")


@dataclass(eq=False)
class Job:
    """One unit of work. Timestamps are seconds since the epoch; `position` counts jobs ahead of it."""

    id: str
    kind: str
    fn: Callable[[JobContext], Any] | None = field(repr=False)  # None once finished
    context: JobContext = field(repr=False)
    description: str = ""
    state: JobState = "queued"
    # Jobs ahead of this one, the running one included: 0 = running (or next with nothing running);
    # None once finished.
    position: int | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    result: Any = None
    error: str | None = None
    error_type: str | None = None  # the exception's class name, e.g. "OutOfMemoryError"
    traceback: str | None = field(default=None, repr=False)  # formatted when it failed
    # The exception with its frames freed (type checks and attributes like UserInputError.field work).
    exception: BaseException | None = field(default=None, repr=False)
    _finished: threading.Event = field(default_factory=threading.Event, repr=False)
    # Called once when the job finishes (see on_finished); guarded by _callbacks_lock.
    _callbacks: list[Callable[[Job], None]] = field(default_factory=list, repr=False)
    _callbacks_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def on_finished(self, callback: Callable[[Job], None]) -> None:
        """Call `callback(job)` once the job has finished (at once, on this thread, if it already has).

        It runs on the thread that finishes the job (the worker, or a canceller): it must be quick and not
        block, e.g. `loop.call_soon_threadsafe(...)`. Lets an async waiter sleep until the end instead of
        polling. An exception from it is logged, never raised into the worker."""
        with self._callbacks_lock:
            if not self._finished.is_set():
                self._callbacks.append(callback)
                return
        _call_quietly(callback, self)

    def _run_finished_callbacks(self) -> None:
        with self._callbacks_lock:
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _call_quietly(callback, self)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finished (None = forever, else seconds); True if it has."""
        return self._finished.wait(timeout)

    def wait_result(self, timeout: float | None = None) -> Any:
        """Block until finished and return `result` (None for failed/cancelled jobs: look at `error`)."""
        if not self._finished.wait(timeout):
            raise TimeoutError(f"job {self.id} still {self.state} after {timeout} s")
        return self.result

    def snapshot(self) -> ProgressSnapshot:
        """The job's progress, safe to read from any thread."""
        return self.context.snapshot()

    @property
    def duration(self) -> float | None:
        """Seconds the job ran, or has been running so far; None if it never started."""
        if self.started_at is None:
            return None
        return (self.finished_at or time.time()) - self.started_at


class JobQueue:
    """FIFO job queue with one worker thread; interrupt/skip act on the running job only."""

    def __init__(self, *, history_size: int = 100, preview_every_n_steps: int = 0, preview_scale: int = 1,
                 id_length: int = 12, name: str = "jobs-worker",
                 after_failure: Callable[[Job], None] | None = None):
        # Read when each job starts, so a settings change applies from the next job on.
        self.preview_every_n_steps = preview_every_n_steps
        self.preview_scale = preview_scale
        self.preview_decoder: Callable[[Any, str], Any] | None = None  # None = the cheap latent->RGB map
        self._history_size = max(0, history_size)
        self._id_length = id_length
        self._after_failure = after_failure
        # One condition guards the queue, the running job and the history: they change together.
        self._cond = threading.Condition()
        self._queued: deque[Job] = deque()
        self._active: dict[str, Job] = {}  # queued and running, by id
        self._current: Job | None = None
        self._history: OrderedDict[str, Job] = OrderedDict()  # finished, oldest first
        self._closed = False
        # Daemon: a queue nobody shut down must not keep the interpreter alive; shutdown() joins it.
        self._worker = threading.Thread(target=self._run, name=name, daemon=True)
        self._worker.start()

    # -- submitting and looking up ---------------------------------------------------------------

    def submit(self, kind: str, fn: Callable[[JobContext], Any], *, description: str = "") -> Job:
        """Queue `fn(ctx)` to run on the worker after the jobs already queued; returns the Job at once."""
        with self._cond:
            if self._closed:
                raise RuntimeError("job queue is shut down")
            job_id = self._new_id()
            ctx = JobContext(job_id, preview_every_n_steps=self.preview_every_n_steps,
                             preview_scale=self.preview_scale, preview_decoder=self.preview_decoder)
            job = Job(id=job_id, kind=kind, fn=fn, context=ctx, description=description)
            self._queued.append(job)
            self._active[job_id] = job
            self._renumber()
            self._cond.notify_all()
        return job

    def _new_id(self) -> str:
        while True:  # short ids can collide in theory; a retry costs nothing
            job_id = uuid.uuid4().hex[: self._id_length]
            if job_id not in self._active and job_id not in self._history:
                return job_id

    def get(self, job_id: str) -> Job | None:
        """The queued, running or remembered job with this id, else None."""
        with self._cond:
            return self._active.get(job_id) or self._history.get(job_id)

    def list(self) -> list[Job]:
        """All known jobs in submission order: finished (history), then running, then queued."""
        with self._cond:
            running = [self._current] if self._current is not None else []
            return [*self._history.values(), *running, *self._queued]

    def current(self) -> Job | None:
        """The running job, if any."""
        with self._cond:
            return self._current

    def snapshot(self) -> ProgressSnapshot | None:
        """Progress of the running job, or None when idle."""
        job = self.current()
        return job.snapshot() if job is not None else None

    @property
    def pending(self) -> int:
        """Number of jobs waiting (not counting the running one)."""
        with self._cond:
            return len(self._queued)

    def wait(self, job_id: str, timeout: float | None = None) -> bool:
        """Block until the job finished (timeout in seconds, None = forever); True if it has."""
        job = self.get(job_id)
        if job is None:
            raise KeyError(f"no job with id {job_id!r}")
        if threading.current_thread() is self._worker and not job.finished:
            # The worker waiting for a job only it can run would wait forever.
            raise RuntimeError("a job cannot wait for another job of the same queue")
        return job.wait(timeout)

    # -- stopping ----------------------------------------------------------------------------------

    def cancel(self, job_id: str) -> bool:
        """Remove a queued job (state cancelled) or interrupt a running one; False if already finished."""
        with self._cond:
            job = self._active.get(job_id)
            if job is None:
                return False
            if job is self._current:
                job.context.request_interrupt()
                return True
            self._queued.remove(job)
            self._finish(job, "cancelled")
            self._renumber()
        job._run_finished_callbacks()
        return True

    def interrupt(self) -> bool:
        """Stop the running job after its current step, keeping finished images; False if idle."""
        with self._cond:
            if self._current is None:
                return False
            self._current.context.request_interrupt()
            return True

    def skip(self) -> bool:
        """Abandon the running job's current image batch and go on with its next one; False if idle."""
        with self._cond:
            if self._current is None:
                return False
            self._current.context.request_skip()
            return True

    def shutdown(self, *, cancel_pending: bool = True, timeout: float | None = 30.0) -> None:
        """Stop accepting jobs, cancel queued ones (or let them run), interrupt the running one, join."""
        with self._cond:
            self._closed = True
            cancelled = []
            if cancel_pending:
                while self._queued:
                    cancelled.append(self._queued.popleft())
                    self._finish(cancelled[-1], "cancelled")
                if self._current is not None:
                    self._current.context.request_interrupt()
            self._renumber()
            self._cond.notify_all()
        for job in cancelled:
            job._run_finished_callbacks()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the worker ----------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queued and not self._closed:
                    self._cond.wait()
                if not self._queued:
                    return  # shut down and drained
                job = self._queued.popleft()
                self._current = job
                job.state = "running"
                job.started_at = time.time()
                job.context._set_state("running")
                self._renumber()
            state, result = self._execute(job)
            with self._cond:
                self._current = None
                job.result = result
                self._finish(job, state)
                self._renumber()
            job._run_finished_callbacks()  # outside the lock: a callback may look at the queue

    def _execute(self, job: Job) -> tuple[JobState, Any]:
        """Run the job's function; never raises, so no job can kill the worker."""
        try:
            result = job.fn(job.context)
        except JobStopped:
            # An interrupt the job did not catch, or a skip outside any batch scope (nothing after it
            # ran): either way the job's work is partial.
            return "interrupted", None
        except BaseException as exc:  # even SystemExit from a job must not end the worker
            failure = exc
        else:
            # A job that caught the interrupt itself and returned its finished images is still "interrupted".
            return ("interrupted" if job.context.interrupted else "done"), result
        # Outside the except block, so the interpreter no longer holds the traceback either.
        self._record_failure(job, failure)
        del failure
        self._cleanup_after_failure(job)
        return "failed", None

    def _record_failure(self, job: Job, exc: BaseException) -> None:
        # The traceback goes into the log as text: a log record holding exc_info would keep the frames.
        try:
            job.traceback = detach_traceback(exc)
            job.error_type = safe_type_name(exc)
            job.error = safe_str(exc) or job.error_type
            job.exception = exc
            if isinstance(exc, UserInputError):
                # A value the user can fix: the message they see is the whole story, not a server fault.
                log.warning("Job %s (%s) refused: %s", job.id, job.kind, job.error)
            else:
                log.error("Job %s (%s) failed\n%s", job.id, job.kind, job.traceback.rstrip())
        except BaseException:  # noqa: BLE001 - e.g. MemoryError while formatting: still a failed job
            job.error = job.error or "the job failed (its error could not be recorded)"

    def _cleanup_after_failure(self, job: Job) -> None:
        if self._after_failure is None:
            return
        try:
            self._after_failure(job)
        except BaseException as exc:  # noqa: BLE001 - cleanup is best effort and must not stop the worker
            log.warning("Cleanup after job %s failed: %s", job.id, safe_str(exc))

    def _finish(self, job: Job, state: JobState) -> None:
        # Caller holds the lock.
        job.state = state
        job.finished_at = time.time()
        job.position = None
        job.context._set_state(state)
        job.fn = None  # its closure holds the request (init images, masks): no use once finished
        self._active.pop(job.id, None)
        self._history[job.id] = job
        while len(self._history) > self._history_size:
            self._history.popitem(last=False)
        with job._callbacks_lock:  # a callback added from now on runs at once (Job.on_finished)
            job._finished.set()
        self._cond.notify_all()

    def _renumber(self) -> None:
        # Caller holds the lock. Positions are a few dozen at most, so recounting is cheaper than tracking.
        ahead = 0
        if self._current is not None:
            self._current.position = 0
            ahead = 1
        for index, job in enumerate(self._queued):
            job.position = ahead + index


def _call_quietly(callback: Callable[[Job], None], job: Job) -> None:
    try:
        callback(job)
    except Exception as exc:  # noqa: BLE001 - a waiter's bug must not stop the worker or the canceller
        log.warning("A finished-callback of job %s failed: %s", job.id, safe_str(exc))
