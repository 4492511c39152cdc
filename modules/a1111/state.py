"""`shared.state`: A1111's view of the running job, read from (and acting on) our job queue.

Extensions read `state.interrupted` / `state.skipped` in their loops, set `state.job_count` and
`state.textinfo` for progress, and call `state.interrupt()`. Reads come from the queue's running job,
so there is no second copy of the truth.
"""
from __future__ import annotations

import time
from typing import Any


class State:
    """A1111's shared.state over one app's JobQueue."""

    def __init__(self, jobs):
        self._jobs = jobs
        self.server_start = time.time()
        self.job = ""
        self.job_no = 0
        self.job_count = 0
        self.job_timestamp = "0"
        self.processing_has_refined_job_count = False
        self.current_latent = None
        self.current_image = None
        self.current_image_sampling_step = 0
        self.id_live_preview = 0
        self.time_start: float | None = None
        self.server_command = None
        self.need_restart = False
        self.stopping_generation = False

    def _context(self):
        job = self._jobs.current()
        return job.context if job is not None else None

    @property
    def interrupted(self) -> bool:
        ctx = self._context()
        return bool(ctx is not None and ctx.interrupted)

    @interrupted.setter
    def interrupted(self, value: bool) -> None:
        if value:
            self.interrupt()

    @property
    def skipped(self) -> bool:
        ctx = self._context()
        return bool(ctx is not None and ctx.skip_requested)

    @skipped.setter
    def skipped(self, value: bool) -> None:
        if value:
            self.skip()

    @property
    def sampling_step(self) -> int:
        snap = self._jobs.snapshot()
        return snap.step if snap is not None else 0

    @sampling_step.setter
    def sampling_step(self, value: int) -> None:
        pass  # our step callback owns the step counter

    @property
    def sampling_steps(self) -> int:
        snap = self._jobs.snapshot()
        return snap.steps_total if snap is not None else 0

    @sampling_steps.setter
    def sampling_steps(self, value: int) -> None:
        pass

    @property
    def textinfo(self) -> str:
        ctx = self._context()
        return ctx.textinfo if ctx is not None else ""

    @textinfo.setter
    def textinfo(self, text: str) -> None:
        ctx = self._context()
        if ctx is not None:
            ctx.textinfo = text or ""

    def interrupt(self) -> None:
        self._jobs.interrupt()

    def skip(self) -> None:
        self._jobs.skip()

    def stop_generating(self) -> None:
        self._jobs.interrupt()

    def nextjob(self) -> None:
        self.job_no += 1

    def begin(self, job: str = "(unknown)") -> None:
        self.job, self.job_no, self.job_count = job, 0, 0
        self.time_start = time.time()

    def end(self) -> None:
        self.job = ""

    def set_current_image(self) -> None:
        pass  # live previews come from our step callback

    def assign_current_image(self, image) -> None:
        self.current_image = image

    def dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "interrupted": self.interrupted, "job": self.job,
                "job_count": self.job_count, "job_timestamp": self.job_timestamp, "job_no": self.job_no,
                "sampling_step": self.sampling_step, "sampling_steps": self.sampling_steps}
