"""What the UI path costs next to a generation, without a browser (issue 17): the progress stream wakes the
event loop only for its updates and the job's end, sends at most about one update a second, and Gradio's queue
loops do not wake the server 1000 times a second. Counts, never wall-clock bounds."""
from __future__ import annotations

import asyncio
import inspect
import threading
import time

import gradio as gr
import pytest

from modules.jobs.queue import JobQueue
from webui.ui import mount
from webui.ui.components import runner
from webui.ui.queue_timing import calm_queue

WAIT = 60.0  # seconds; a hang guard only


@pytest.fixture
def queue():
    q = JobQueue()
    yield q
    q.shutdown(timeout=WAIT)


def stepping_job(queue: JobQueue, release: threading.Event):
    """A job whose step count changes every few ms until `release` is set (so every poll sees news)."""
    started = threading.Event()

    def run(ctx):
        ctx.set_total(10_000)
        started.set()
        step = 0
        while not release.wait(0.005):
            ctx.step(step % 10_000)
            step += 1
        return "finished"

    job = queue.submit("stepping", run)
    assert started.wait(WAIT)
    return job


def collect(job) -> tuple[list, float]:
    async def consume():
        start = time.monotonic()
        updates = [update async for update in runner.job_progress(job)]
        return updates, time.monotonic() - start

    return asyncio.run(asyncio.wait_for(consume(), WAIT))


def collect_released_after(job, release: threading.Event, seconds: float) -> tuple[list, float]:
    """collect(job) while a timer sets `release` after `seconds`; `release` is set however it ends."""
    timer = threading.Timer(seconds, release.set)
    timer.start()
    try:
        return collect(job)
    finally:
        timer.cancel()
        release.set()


def test_progress_stream_sends_about_one_update_a_second(queue):
    # Gradio's page does work per message that grows with the page (every tab is built at load); at 4 updates
    # a second it used more CPU than the sampler of a 512x512 job on 2 cores. A1111 refreshes once a second.
    release = threading.Event()
    job = stepping_job(queue, release)
    updates, elapsed = collect_released_after(job, release, 2.5)
    assert job.wait(WAIT) and job.result == "finished"
    assert 1 <= len(updates) <= elapsed / 1.0 + 2, (len(updates), elapsed)


REAL_SLEEP = asyncio.sleep


def record_sleeps(monkeypatch, asyncio_module) -> list[float]:
    """Patch `asyncio_module.sleep` to record each delay (and still sleep); returns the list it fills."""
    delays: list[float] = []

    async def counting_sleep(delay, *args, **kwargs):
        delays.append(delay)
        return await REAL_SLEEP(delay, *args, **kwargs)

    monkeypatch.setattr(asyncio_module, "sleep", counting_sleep)
    return delays


def test_waiting_for_the_job_does_not_poll_the_event_loop(queue, monkeypatch):
    # The handler checked job.finished every 10 ms (100 loop wake-ups a second per running job, 10 per queued
    # one); the worker now wakes the loop when the job ends.
    sleeps = record_sleeps(monkeypatch, runner.asyncio)
    release = threading.Event()
    job = stepping_job(queue, release)
    collect_released_after(job, release, 0.5)
    assert sleeps == []


def test_the_stream_ends_when_the_job_ends_not_at_the_next_poll(queue, monkeypatch):
    # With no polling, the end must still be noticed: a poll period far longer than the hang guard shows it.
    monkeypatch.setattr(runner, "POLL_SECONDS", 10 * WAIT)
    release = threading.Event()
    job = stepping_job(queue, release)
    threading.Timer(0.2, release.set).start()
    updates, _ = collect(job)  # asyncio.wait_for(WAIT) fails the test if the end is missed
    assert updates == [] and job.finished


def test_gradio_queue_loops_wake_the_event_loop_every_50_ms_not_every_1_ms(monkeypatch):
    blocks = gr.Blocks()
    queue = blocks._queue
    calm_queue(queue)
    assert queue.sleep_when_free >= 0.05 and queue.progress_update_sleep_when_free >= 0.05
    # And the loops really sleep that long: count their wake-ups over half a second of an idle queue.
    import gradio.queueing as queueing

    wakeups = record_sleeps(monkeypatch, queueing.asyncio)

    async def idle_half_second():
        tasks = [asyncio.create_task(queue.start_processing()), asyncio.create_task(queue.start_progress_updates())]
        await REAL_SLEEP(0.5)
        queue.stopped = True
        await asyncio.wait(tasks, timeout=WAIT)

    asyncio.run(idle_half_second())
    assert 0 < len(wakeups) <= 2 * (0.5 / 0.05 + 2), len(wakeups)  # unchanged Gradio: ~550


def test_the_mounted_ui_calms_gradios_queue():
    assert "calm_queue(blocks._queue)" in inspect.getsource(mount.mount_ui)


def previewing_job(queue: JobQueue, release: threading.Event, colours: list[str]):
    """A job that steps and publishes one new live preview per colour, 0.3 s apart, until `release`."""
    from PIL import Image

    started = threading.Event()

    def run(ctx):
        ctx.set_total(100)
        started.set()
        for step, colour in enumerate(colours):
            ctx.step(step)
            ctx.set_preview(Image.new("RGB", (64, 64), colour))
            if release.wait(1.2):
                break
        release.wait(WAIT)
        return "finished"

    job = queue.submit("previewing", run)
    assert started.wait(WAIT)
    return job


def test_live_previews_go_out_as_jpeg_once_each_and_never_again_unchanged(queue, monkeypatch):
    # The live preview used to go to the gallery: a PNG encode and cache write by Gradio per preview, and a
    # skipped gallery (a component rebuild) in every other progress message.
    import base64
    import io
    import re

    from PIL import Image

    encodes = []
    real = runner.preview_html
    monkeypatch.setattr(runner, "preview_html", lambda image: encodes.append(image) or real(image))
    release = threading.Event()
    job = previewing_job(queue, release, ["red", "blue"])
    updates, _ = collect_released_after(job, release, 3.5)
    assert all(isinstance(text, str) and "progress" in text for text, _ in updates)
    previews = [preview for _, preview in updates if preview is not None]
    assert len(previews) == 2 == len(encodes), updates  # once per new preview, not once per update
    shown = [re.search(r"src='data:image/jpeg;base64,([^']+)'", p) for p in previews]
    colours = [Image.open(io.BytesIO(base64.b64decode(m.group(1)))).convert("RGB").getpixel((32, 32))
               for m in shown]
    assert colours[0][0] > 200 and colours[1][2] > 200  # first red, then the new blue one


def test_a_jobs_stream_skips_no_result_component_until_its_result(queue):
    # A gr.skip() for a component output makes Gradio rebuild that component and its API schema (~25 ms a
    # progress message with the gallery, info and log skipped): progress updates go to the progress panel
    # and the preview only, and the result comes once, at the end, through the pending State.
    release = threading.Event()
    job = stepping_job(queue, release)
    threading.Timer(1.5, release.set).start()

    class Jobs:
        def remember(self, *a):
            pass

        forget = remember

    async def consume():
        return [u async for u in runner.stream_job(None, Jobs(), "k", lambda: None, lambda _req: job)]

    updates = asyncio.run(asyncio.wait_for(consume(), WAIT))
    *progress, last = updates
    assert progress and all(len(u) == 3 and isinstance(u[0], str) and u[2] == gr.skip() for u in progress)
    assert last[0] == "" and len(last[2]) == 5  # (gallery, progress, info, log, state) for show_result
