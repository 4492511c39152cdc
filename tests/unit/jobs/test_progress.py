"""JobContext: progress fraction, ETA (fake clock), previews, stop checks, concurrent snapshots."""
from __future__ import annotations

import dataclasses
import threading

import pytest
import torch

from modules.jobs.preview import SD1_LATENT_RGB, latents_to_preview, latents_to_rgb, resolve_latent_family
from modules.jobs.progress import JobContext, JobInterrupted, JobSkipped, ProgressSnapshot


class FakeClock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def running_context(**kwargs) -> JobContext:
    ctx = JobContext("job1", **kwargs)
    ctx._set_state("running")  # the queue does this when the worker picks the job up
    return ctx


def test_progress_and_eta_from_measured_step_rate():
    clock = FakeClock()
    ctx = running_context(clock=clock)
    ctx.set_total(steps_total=10, images_total=2)
    snap = ctx.snapshot()
    assert (snap.progress, snap.eta_relative, snap.step) == (0.0, 0.0, 0)  # no rate measured yet
    for step in range(5):
        clock.now += 2.0  # 2 s per step
        ctx.step(step)
    snap = ctx.snapshot()
    assert snap.step == 5 and snap.progress == pytest.approx(0.25)
    assert snap.eta_relative == pytest.approx(15 * 2.0)
    ctx.begin_image(1)
    for step in range(10):
        clock.now += 1.0  # faster now: the rate is the average since the first step
        ctx.step(step)
    snap = ctx.snapshot()
    assert snap.image_index == 1 and snap.progress == pytest.approx(1.0)
    assert snap.eta_relative == pytest.approx(0.0)


def test_eta_after_the_first_step_uses_time_since_start():
    clock = FakeClock()
    ctx = running_context(clock=clock)
    ctx.set_total(4, 1)
    clock.now += 3.0
    ctx.step(0)
    assert ctx.snapshot().eta_relative == pytest.approx(3 * 3.0)


def test_progress_is_clamped_and_done_means_one():
    ctx = running_context()
    ctx.set_total(3, 1)
    ctx.step(7)  # schedulers with extra model calls can overshoot; never past the total
    snap = ctx.snapshot()
    assert snap.step == 3 and snap.progress == 1.0
    ctx._set_state("done")
    assert ctx.snapshot().progress == 1.0 and ctx.snapshot().eta_relative == 0.0
    unknown = running_context()
    unknown.step(4)
    assert unknown.snapshot().progress == 0.0 and unknown.snapshot().steps_total == 0


def test_snapshot_is_frozen_and_carries_textinfo():
    ctx = running_context()
    ctx.textinfo = "Loading model"
    snap = ctx.snapshot()
    assert isinstance(snap, ProgressSnapshot) and snap.textinfo == "Loading model" and snap.job_id == "job1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.step = 3


def test_check_raises_requested_stop_and_batch_scope_handles_it():
    ctx = running_context()
    ctx.check()  # nothing requested
    ctx.request_skip()
    with pytest.raises(JobSkipped):
        ctx.check()
    with ctx.batch(0) as scope:
        ctx.check()
    assert scope.skipped and not scope.completed and not ctx.skip_requested
    with ctx.batch(1) as scope:
        ctx.check()
    assert scope.completed
    ctx.request_interrupt()
    with pytest.raises(JobInterrupted), ctx.batch(2):
        ctx.check()  # an interrupt ends the job, not just the batch
    assert ctx.interrupted
    with pytest.raises(JobInterrupted):
        ctx.check()  # and stays for the rest of the job
    with pytest.raises(ValueError), ctx.batch(3):
        raise ValueError("a real error is not swallowed")


def test_preview_every_n_steps_latent_sized():
    ctx = running_context(preview_every_n_steps=2)
    ctx.set_total(6, 1)
    latents = torch.randn(1, 4, 12, 20)  # (batch, channels, h, w)
    ids = []
    for step in range(6):
        ctx.step(step, latents)
        ids.append(ctx.snapshot().preview_id)
    assert ids == [0, 1, 1, 2, 2, 3]
    preview = ctx.snapshot().preview
    assert preview.mode == "RGB" and preview.size == (20, 12)  # one pixel per latent cell


def test_preview_off_scaled_and_unsupported_latents():
    off = running_context(preview_every_n_steps=0)
    off.step(0, torch.randn(1, 4, 8, 8))
    assert off.snapshot().preview is None
    scaled = running_context(preview_every_n_steps=1, preview_scale=8)
    scaled.step(0, torch.randn(1, 4, 8, 6))
    assert scaled.snapshot().preview.size == (48, 64)  # the output size of an 8x VAE
    odd = running_context(preview_every_n_steps=1)
    odd.step(0, torch.randn(1, 16, 8, 8))  # 16-channel latents: no cheap map, the job goes on
    assert odd.snapshot().preview is None and odd.snapshot().step == 1


def test_batch_previews_are_tiled_in_a_grid():
    image = latents_to_preview(torch.randn(3, 4, 10, 16))
    assert image.size == (2 * 16, 2 * 10)  # 3 images -> 2 columns, 2 rows
    assert image.getpixel((16 + 3, 10 + 3)) == (0, 0, 0)  # the empty fourth cell


def test_latent_rgb_map_values_and_families():
    latents = torch.zeros(1, 4, 2, 2)
    latents[0, 0] = 1.0  # only channel 0 on: the colour is the first matrix row
    rgb = latents_to_rgb(latents, "sd15")
    expected = [round((v + 1) * 127.5) for v in SD1_LATENT_RGB[0]]
    assert rgb.shape == (1, 2, 2, 3) and rgb.dtype == torch.uint8
    assert rgb[0, 0, 0].tolist() == expected
    assert latents_to_rgb(torch.zeros(1, 4, 1, 1))[0, 0, 0].tolist() == [128, 128, 128]
    assert latents_to_rgb(latents, "sdxl-base")[0, 0, 0].tolist() != expected
    assert latents_to_rgb(latents.half(), "sd2-v").tolist() == rgb.tolist()
    assert [resolve_latent_family(n) for n in ("sd1", "sd2", "sdxl", "sdxl-refiner")] == [
        "sd1", "sd1", "sdxl", "sdxl"]
    with pytest.raises(ValueError, match="flux"):
        resolve_latent_family("flux")
    with pytest.raises(ValueError):
        latents_to_preview(torch.randn(1, 4, 2, 2), scale=0)


def test_snapshots_read_concurrently_while_the_worker_writes():
    ctx = running_context(preview_every_n_steps=1)
    steps, images = 50, 4
    ctx.set_total(steps, images)
    latents = torch.randn(1, 4, 4, 4)
    done = threading.Event()
    problems: list[str] = []

    def writer():
        for image in range(images):
            with ctx.batch(image):
                for step in range(steps):
                    ctx.step(step, latents)
        done.set()

    def reader():
        last_progress, last_preview = 0.0, 0
        while not done.is_set():
            snap = ctx.snapshot()
            if not (0.0 <= snap.progress <= 1.0 and 0 <= snap.step <= snap.steps_total):
                problems.append(f"out of range: {snap}")
            if snap.progress < last_progress or snap.preview_id < last_preview:
                problems.append(f"went backwards: {snap}")
            if (snap.preview is None) != (snap.preview_id == 0):
                problems.append(f"preview and id disagree: {snap}")
            last_progress, last_preview = snap.progress, snap.preview_id

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in readers:
        t.start()
    writer()
    for t in readers:
        t.join(10)
    assert problems == []
    assert ctx.snapshot().preview_id == steps * images
