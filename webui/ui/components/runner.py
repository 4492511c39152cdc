"""Run one job from a tab: submit, stream progress/ETA/live preview while it runs, then show the result.

The handler is an async generator, so Gradio pushes each yield to the page; it polls the job's snapshot
once a second and yields only when something changed. While the job runs it streams to the progress panel
(bar, ETA) and, when a new one came, to the live preview (a JPEG laid over the gallery); the result goes to
a State, and a follow-up event (output.wire_result) shows it in the gallery, info and message line. An update that leaves
some outputs of an event alone needs a `gr.skip()` for each, and Gradio rebuilds the component and its API
schema for every skip: ~25 ms a progress message when the gallery, info and log were skipped.

It waits on the event loop, never in a thread: every sync route and sync Gradio handler shares one pool of
40 threads, and 40 browser tabs waiting in the job queue used to hold all of them. Only building the request (which opens images) and submitting run in a
thread, briefly. Every failure ends as a readable line in the output panel (never a stack-trace popup), and
the handler always returns, so Generate never stays stuck.
"""
from __future__ import annotations

import asyncio
import base64
import html
import io
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import gradio as gr
from gradio.utils import get_upload_folder

from modules.types import GenerationResult, UserInputError

log = logging.getLogger("webui.ui")

# Seconds between progress updates sent to the page, as A1111's default live-preview refresh period (1 s).
# Every update is a message Gradio's page handles with work that grows with the page (all tabs are built at
# load): at 4 a second the page took more CPU than the sampler during a 512x512 job on 2 cores.
POLL_SECONDS = 1.0
# The first look comes sooner, so a click shows its progress bar (or place in the queue) without a wait.
FIRST_POLL_SECONDS = 0.25
# Live previews go to the page as JPEG: a PNG of a 512x512 preview took Gradio 20-40 ms to encode and write
# to its cache once a second, and a preview is only looked at for a moment.
PREVIEW_JPEG_QUALITY = 85


class JobEnd:
    """Awaits one job's end on the event loop: the worker wakes the loop when the job finishes.

    No polling: checking `job.finished` every 10 ms (100 ms while queued) woke the loop 100 times a second for
    every running job. One callback per job, made before the first wait."""

    def __init__(self, job):
        self.job = job
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()

        def finished(_job) -> None:  # on the thread that finished the job
            try:
                loop.call_soon_threadsafe(self._set)
            except RuntimeError:  # that loop is closed: nobody waits any more
                pass

        job.on_finished(finished)

    def _set(self) -> None:
        if not self._done.done():
            self._done.set_result(True)

    async def wait(self, timeout: float) -> bool:
        """True once the job has finished; False after `timeout` seconds without it finishing."""
        if self.job.finished:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._done), timeout)
        except asyncio.TimeoutError:
            return self.job.finished
        return True


class SessionJobs:
    """The job each browser session (and tab) is running, so Interrupt/Skip act on the user's own job."""

    def __init__(self, ctx):
        self.ctx = ctx
        self._jobs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def remember(self, key: str, job) -> None:
        with self._lock:
            self._jobs[key] = job

    def forget(self, key: str, job) -> None:
        with self._lock:
            if self._jobs.get(key) is job:
                del self._jobs[key]

    def interrupt(self, key: str) -> None:
        with self._lock:
            job = self._jobs.get(key)
        if job is not None and not job.finished:
            self.ctx.jobs.cancel(job.id)  # queued: removed; running: stops after the current step
        else:
            self.ctx.jobs.interrupt()  # as A1111: Interrupt stops whatever runs

    def skip(self, key: str) -> None:
        with self._lock:
            job = self._jobs.get(key)
        if job is None or self.ctx.jobs.current() is job:
            self.ctx.jobs.skip()


def session_key(request: gr.Request | None, tab: str) -> str:
    return f"{getattr(request, 'session_hash', None) or 'anonymous'}:{tab}"


def notes_html(notes: list[str], *, error: bool = False) -> str:
    """The message line (notes are HTML). data-stamp is new on every message, so userscripts and tests
    can tell a fresh message from an identical old one."""
    cls = "gen-error" if error else "gen-note"
    body = "".join(f"<div class='{cls}'>{note}</div>" for note in notes)
    return f"<div class='gen-log' data-stamp='{uuid.uuid4().hex[:12]}'>{body}</div>"


def error_html(message: str) -> str:
    return notes_html([html.escape(message)], error=True)


def progress_html(snap, position: int | None) -> str:
    """Progress bar with step, image and ETA text, as A1111's bar over the gallery."""
    if snap is None or snap.state == "queued":
        ahead = f": {position} job{'s' if position != 1 else ''} ahead" if position else ""
        return f"<div class='progress-text'>Waiting in queue{ahead}</div>"
    percent = round(snap.progress * 100)
    parts = []
    if snap.steps_total:
        parts.append(f"step {snap.step}/{snap.steps_total}")
    if snap.images_total > 1:
        parts.append(f"batch {snap.image_index + 1}/{snap.images_total}")
    if snap.eta_relative:
        parts.append(f"ETA {format_seconds(snap.eta_relative)}")
    if snap.textinfo:
        parts.append(html.escape(snap.textinfo))
    return (f"<div class='progress-bar'><div class='progress-fill' style='width:{percent}%'></div>"
            f"<span class='progress-label'>{percent}%</span></div>"
            f"<div class='progress-text'>{' · '.join(parts)}</div>")


def format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def result_state(result: GenerationResult) -> dict[str, Any]:
    """What the output panel keeps per session: gallery images with their infotexts and saved files."""
    images, infotexts = list(result.images), list(result.infotexts)
    paths = list(result.saved_paths[:len(images)])
    if result.grid is not None:
        # A1111 shows the grid first; it carries the first image's infotext (or a script's own).
        images.insert(0, result.grid)
        infotexts.insert(0, result.grid_info)
        paths.insert(0, result.saved_paths[len(result.images)] if len(result.saved_paths) > len(result.images)
                     else "")
    return {"images": images, "infotexts": infotexts, "paths": paths, "selected": 0}


def progress_update(progress: tuple[str, str | None]) -> tuple:
    """A streamed (progress panel, live preview, pending result) update while a job runs, from job_progress.
    The preview is skipped unless a new one came (an unchanged one is neither sent nor redrawn), and the
    result stays as it is."""
    text, preview = progress
    return text, gr.skip() if preview is None else preview, gr.skip()


def result_update(outputs: tuple) -> tuple:
    """The stream's last update: the panel's (gallery, progress, info, log, state) for output.show_result,
    which also takes the preview away (now, the old gallery would flash up between the two)."""
    return "", gr.skip(), outputs


def message_outputs(message_html: str) -> tuple:
    """(gallery, progress, info, log, state) that only put a message on the line under the gallery."""
    skip = gr.skip()
    return skip, "", skip, message_html, skip


async def stream_job(ctx, jobs: SessionJobs, key: str, make_request: Callable[[], Any],
                     submit: Callable[[Any], Any]) -> AsyncIterator[tuple]:
    """Yields progress_update()s until the job ends, then one result_update(); never raises."""
    started = time.perf_counter()
    try:
        job = await anyio.to_thread.run_sync(lambda: submit(make_request()))
    except (UserInputError, ValueError, OSError) as exc:
        yield result_update(message_outputs(error_html(str(exc))))
        return
    except Exception as exc:
        log.exception("Could not start the job")
        yield result_update(message_outputs(error_html(f"Could not start: {exc}")))
        return
    jobs.remember(key, job)
    try:
        async for progress in job_progress(job):
            yield progress_update(progress)
    finally:
        jobs.forget(key, job)
    yield result_update(final_outputs(job, time.perf_counter() - started))


async def job_progress(job, prefix: str = "", previews: bool = True) -> AsyncIterator[tuple[str, str | None]]:
    """(progress panel HTML, the new live preview's HTML or None) whenever the job's progress changed, until
    it finished."""
    seen: tuple | None = None
    end = JobEnd(job)
    every = min(FIRST_POLL_SECONDS, POLL_SECONDS)
    while not await end.wait(every):
        every = POLL_SECONDS
        # In a thread: a snapshot turns a new live preview into an image (it waits for the GPU's copy), and
        # the JPEG encode would hold up the event loop.
        snap, encoded = await anyio.to_thread.run_sync(_look, job, seen[3] if seen and previews else None,
                                                       previews)
        marker = (snap.state, snap.step, snap.image_index, snap.preview_id, job.position)
        if marker == seen:
            continue
        seen = marker
        yield prefix + progress_html(snap, job.position), encoded


def _look(job, shown_preview_id, previews: bool):
    """(snapshot, the preview's HTML when it is new, else None)."""
    snap = job.snapshot()
    if not previews or snap.preview is None or snap.preview_id == shown_preview_id:
        return snap, None
    return snap, preview_html(snap.preview)


def preview_html(image) -> str:
    """A live preview for the preview panel (CSS lays it over the gallery, as A1111's)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=PREVIEW_JPEG_QUALITY)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<div class='live-preview'><img alt='Live preview' src='data:image/jpeg;base64,{data}'></div>"


def final_outputs(job, seconds: float) -> tuple:
    """The finished job as (gallery, progress, info, log, state)."""
    skip = gr.skip()
    result = job.result
    if job.error:
        return skip, "", skip, error_html(job.error), skip
    if not isinstance(result, GenerationResult) or not (result.images or result.grid is not None):
        note = "Interrupted: no image was finished." if job.state in ("interrupted", "cancelled") else \
            "No images were produced."
        return [], "", "", notes_html([note]), skip
    state = result_state(result)
    notes = [f"Time taken: {format_seconds(seconds) if seconds >= 1 else f'{seconds:.2f}s'}"]
    if result.interrupted or job.state == "interrupted":
        notes.insert(0, "Interrupted: showing the images finished before the stop.")
    notes += [html.escape(w) for w in result.warnings]
    info = info_html(state["infotexts"][0] if state["infotexts"] else "")
    return gallery_items(state["images"], state["paths"]), "", info, notes_html(notes), state


def gallery_items(images: list, paths: list[str]) -> list:
    """What the gallery is handed: each saved PNG itself, linked into Gradio's cache, else the image.

    Handing Gradio a PIL image makes it encode a PNG again (about as long as the save itself, 0.1-0.3 s
    at 512x512 here) and write it to its cache; a file already in its cache is served as it is. Only PNGs
    are reused: a JPEG or WebP sample would show other pixels than were generated."""
    items: list = []
    for index, image in enumerate(images):
        path = paths[index] if index < len(paths) else ""
        cached = cache_copy(path) if path and path.lower().endswith(".png") else None
        items.append(cached or image)
    return items


def cache_copy(path: str) -> str | None:
    """`path` hard-linked (copied across file systems) into Gradio's upload folder; None if it is gone.
    Gradio serves files from there without copying them and without widening `allowed_paths`."""
    source = Path(path)
    target = Path(get_upload_folder()) / f"result-{uuid.uuid4().hex}" / source.name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    except OSError:
        return None
    return str(target)


def info_html(infotext: str) -> str:
    """An infotext as A1111 shows it under the gallery: prompt lines, then the parameters line."""
    if not infotext:
        return ""
    lines = [html.escape(line) for line in infotext.split("\n")]
    return "<div class='infotext'>" + "<br>".join(lines) + "</div>"
