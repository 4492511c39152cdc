"""Progress of one job: the `JobContext` a job function gets, its snapshots, and the diffusers step callback.

The worker thread writes (steps, totals, previews) and the API/UI threads read `snapshot()`; one lock
guards the fields and a snapshot is a frozen copy, so readers never see half an update.

Live previews are lazy: at a preview step the worker only queues the latent->RGB kernels on the latents'
device and keeps the small result; the copy to the CPU (a device sync on a GPU) and the PIL image happen
in the first `snapshot()` that reads them, on the reader's thread. A preview nobody polls for costs the
sampler a tiny matmul, and a page polling 4 times a second gets at most 4 images a second.

Stopping follows A1111: `interrupt` ends the whole job (images already finished are kept by the job
function), `skip` abandons the current image batch and lets the job go on with the next batch. Both
are flags that `check()` turns into exceptions, raised from the step callback so sampling stops after
the step in progress.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image

if TYPE_CHECKING:  # typing.Self is 3.11+; annotations are strings here, so this costs nothing at run time
    from typing_extensions import Self

JobState = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
StopMode = Literal["raise", "flag"]


class JobStopped(BaseException):
    """Sampling was asked to stop. A BaseException, so `except Exception` in hooks cannot swallow it."""


class JobInterrupted(JobStopped):
    """Interrupt: stop the whole job, keeping the images already finished."""


class JobSkipped(JobStopped):
    """Skip: abandon the current image batch and continue with the next one."""


@dataclass(frozen=True)
class ProgressSnapshot:
    """One consistent reading of a job's progress. Steps are counts, eta in seconds, progress in [0, 1]."""

    job_id: str
    state: JobState
    step: int  # steps finished in the current image batch, 0..steps_total
    steps_total: int  # steps per image batch (all passes, e.g. hires included); 0 = unknown
    image_index: int  # 0-based index of the current image batch (A1111 batch count)
    images_total: int
    progress: float  # fraction of the whole job, 0..1
    eta_relative: float  # seconds left, from the measured step rate; 0 when unknown or finished
    textinfo: str
    preview: Image.Image | None
    preview_id: int  # bumps on every new preview, so a client asks only for new ones


class BatchScope:
    """One image batch: sets its index, ends quietly on skip, clears the skip request.

    JobInterrupted passes through on purpose: it ends the whole job, so the job function catches it
    around its batch loop and returns the images finished so far (A1111 keeps them on interrupt).
    """

    def __init__(self, ctx: JobContext, index: int):
        self.ctx = ctx
        self.index = index
        self.skipped = False

    @property
    def completed(self) -> bool:
        """True when the block ran to its end (read after the `with`)."""
        return not self.skipped

    def __enter__(self) -> Self:
        self.ctx.begin_image(self.index)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        # A skip belongs to the batch it was pressed in: a late one (during decode) must not skip the next.
        self.ctx._skip.clear()
        if exc_type is not None and issubclass(exc_type, JobSkipped):
            self.skipped = True
            return True
        return False


class JobContext:
    """What a job function gets: progress reporting, live previews and the interrupt/skip checks."""

    def __init__(self, job_id: str = "", *, preview_every_n_steps: int = 0, preview_scale: int = 1,
                 preview_decoder: Callable[[Any, str], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.job_id = job_id
        # Steps between live previews (0 = off) and their integer enlargement (1 = latent size).
        self.preview_every_n_steps = preview_every_n_steps
        self.preview_scale = preview_scale
        # (latents, family) -> (B, H, W, 3) uint8 on the latents' device (TAESD: taesd.PreviewDecoders);
        # None = the cheap latent->RGB map.
        self.preview_decoder = preview_decoder
        self._clock = clock
        self._lock = threading.Lock()
        # Events, not bools: request_* come from other threads and check() reads them without the lock.
        self._interrupt = threading.Event()
        self._skip = threading.Event()
        self._state: JobState = "queued"
        self._step = 0
        self._steps_total = 0
        self._image_index = 0
        self._images_total = 1
        self._textinfo = ""
        self._preview: Image.Image | None = None
        self._preview_id = 0  # the id of _preview
        self._pending: Any = None  # RGB tensor of a newer preview not yet turned into an image
        self._pending_id = 0  # bumps on every preview, pending or set
        self._render_lock = threading.Lock()  # one reader renders a pending preview; the worker never waits
        self._started: float | None = None  # clock at set_total (or first step)
        self._steps_done = 0  # steps actually run in this job (skips make positions jump, not this)
        self._rate_anchor: tuple[float, int] | None = None  # (clock, steps_done) at the first step
        self._seconds_per_step: float | None = None

    # -- totals and steps (worker thread) --------------------------------------------------------

    def set_total(self, steps_total: int, images_total: int = 1) -> None:
        """Declare the work: sampling steps per image batch (all passes) and the number of batches."""
        with self._lock:
            self._steps_total = max(0, int(steps_total))
            self._images_total = max(1, int(images_total))
            if self._started is None:
                self._started = self._clock()

    def begin_image(self, index: int) -> None:
        """Start image batch `index` (0-based): its step count restarts at 0."""
        with self._lock:
            self._image_index = max(0, int(index))
            self._step = 0

    def batch(self, index: int) -> BatchScope:
        """`with ctx.batch(i) as scope:` runs batch i; a skip ends only it (then `scope.skipped` is True)."""
        return BatchScope(self, index)

    def step(self, step_index: int, latents: Any = None, *, latent_family: str = "sd1") -> None:
        """Record that step `step_index` (0-based, within the image batch) finished; maybe make a preview."""
        now = self._clock()
        done = int(step_index) + 1
        with self._lock:
            if self._steps_total:
                done = min(done, self._steps_total)
            self._step = done
            self._steps_done += 1
            if self._started is None:
                self._started = now
            self._update_rate(now)
        every = self.preview_every_n_steps
        if every > 0 and latents is not None and done % every == 0:
            self._make_preview(latents, latent_family)

    def _update_rate(self, now: float) -> None:
        # The first step carries warm-up (kernel compilation, offload moves); measure from it onwards
        # once there is a second step, and fall back to time since the start before that.
        if self._rate_anchor is None:
            self._rate_anchor = (now, self._steps_done)
        anchor_time, anchor_steps = self._rate_anchor
        if self._steps_done > anchor_steps:
            self._seconds_per_step = (now - anchor_time) / (self._steps_done - anchor_steps)
        elif self._started is not None:
            self._seconds_per_step = (now - self._started) / self._steps_done

    def _make_preview(self, latents: Any, latent_family: str) -> None:
        from modules.jobs.preview import latents_to_rgb_on_device

        try:
            rgb = (self.preview_decoder or latents_to_rgb_on_device)(latents, latent_family)
        except ValueError:
            # Latents the cheap map does not cover (other channel counts, video): no preview, job goes on.
            return
        with self._lock:
            self._pending = rgb
            self._pending_id += 1

    def set_preview(self, image: Image.Image | None) -> None:
        """Publish a live preview (any size; e.g. a full VAE decode) and bump preview_id."""
        with self._lock:
            self._pending = None
            self._pending_id += 1
            self._preview, self._preview_id = image, self._pending_id

    def _render_pending(self) -> None:
        # Outside the data lock: the worker's step() must never wait for a reader's device copy.
        with self._render_lock:
            with self._lock:
                rgb, pending_id = self._pending, self._pending_id
                self._pending = None
            if rgb is None:
                return
            from modules.jobs import preview

            image = preview.rgb_to_preview(rgb, self.preview_scale)
            with self._lock:
                if pending_id > self._preview_id:
                    self._preview, self._preview_id = image, pending_id

    @property
    def textinfo(self) -> str:
        with self._lock:
            return self._textinfo

    @textinfo.setter
    def textinfo(self, text: str) -> None:
        with self._lock:
            self._textinfo = str(text)

    # -- stop requests (any thread) and checks (worker thread) -----------------------------------

    def request_interrupt(self) -> None:
        """Ask the job to stop at its next check (keeps finished images)."""
        self._interrupt.set()

    def request_skip(self) -> None:
        """Ask the job to abandon the current image batch at its next check."""
        self._skip.set()

    @property
    def interrupted(self) -> bool:
        return self._interrupt.is_set()

    @property
    def skip_requested(self) -> bool:
        return self._skip.is_set()

    def check(self) -> None:
        """Raise JobInterrupted or JobSkipped if requested; cheap enough to call every step."""
        if self._interrupt.is_set():
            raise JobInterrupted(self.job_id)
        if self._skip.is_set():
            raise JobSkipped(self.job_id)

    # -- reading (any thread) ---------------------------------------------------------------------

    @property
    def state(self) -> JobState:
        with self._lock:
            return self._state

    def _set_state(self, state: JobState) -> None:
        # Called by the queue only: the job's state lives with its progress so a snapshot carries both.
        with self._lock:
            self._state = state

    def snapshot(self) -> ProgressSnapshot:
        """A frozen, consistent copy of the progress, safe to read from any thread (renders a new preview)."""
        if self._pending is not None:
            self._render_pending()
        with self._lock:
            steps_total, images_total = self._steps_total, self._images_total
            if self._state == "done":
                progress, eta = 1.0, 0.0
            else:
                within = self._step / steps_total if steps_total else 0.0
                progress = min(1.0, max(0.0, (self._image_index + within) / images_total))
                eta = 0.0
                if self._state == "running" and steps_total and self._seconds_per_step is not None:
                    remaining = images_total * steps_total - (self._image_index * steps_total + self._step)
                    eta = max(0.0, remaining * self._seconds_per_step)
            return ProgressSnapshot(
                job_id=self.job_id, state=self._state, step=self._step, steps_total=steps_total,
                image_index=self._image_index, images_total=images_total, progress=progress,
                eta_relative=eta, textinfo=self._textinfo, preview=self._preview, preview_id=self._preview_id,
            )


# The name the generation code uses for its progress parameter: `generate(pipe, request, hooks, progress)`.
Progress = JobContext


def make_step_callback(ctx: JobContext, *, latent_family: str = "sd1", step_offset: int = 0,
                       pass_steps: int | None = None, on_stop: StopMode = "raise"):
    """A diffusers `callback_on_step_end(pipe, step, timestep, kwargs) -> kwargs` reporting to `ctx`.

    `step_offset` counts the steps of earlier passes (hires: the first pass's steps). `pass_steps` is
    this pass's step count when the scheduler runs more model calls than steps (Heun, DPM2: 2n-1), so
    progress counts user-visible steps. `on_stop`:
    - "raise" (default): the JobInterrupted/JobSkipped from `ctx.check()` propagates out of the pipeline
      call after the current step. Works for every pipeline and custom loop, wastes no VAE decode, and
      the job function knows exactly which images are finished (those whose pipeline call returned).
    - "flag": set `pipe._interrupt = True`; diffusers (SD, SDXL, img2img, inpaint in 0.42) then skips the
      remaining steps and still decodes and returns the half-denoised latents. For callers that want that
      partial image; they call `ctx.check()` after the pipeline returns to learn that it stopped. Falls
      back to "raise" for pipelines that have no `interrupt` property (they would ignore the flag).
    """
    from modules.jobs.preview import resolve_latent_family

    family = resolve_latent_family(latent_family)  # fail at set-up, not in the middle of sampling
    if on_stop not in ("raise", "flag"):
        raise ValueError(f"on_stop must be 'raise' or 'flag', got {on_stop!r}")

    def on_step_end(pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        index = int(step)
        calls = getattr(pipe, "_num_timesteps", None)
        if pass_steps and calls and calls != pass_steps:
            index = math.ceil((index + 1) * pass_steps / calls) - 1
        ctx.step(step_offset + index, callback_kwargs.get("latents"), latent_family=family)
        try:
            ctx.check()
        except JobStopped:
            if on_stop == "flag" and isinstance(getattr(type(pipe), "interrupt", None), property):
                pipe._interrupt = True
                return callback_kwargs
            release_offload_hooks(pipe)
            raise
        return callback_kwargs

    return on_step_end


def release_offload_hooks(pipe) -> None:
    """Put an offloaded pipeline back to its rest state; diffusers does this only when __call__ returns."""
    free = getattr(pipe, "maybe_free_model_hooks", None)
    if free is not None:
        free()
