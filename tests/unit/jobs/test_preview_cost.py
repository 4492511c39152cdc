"""What live previews cost the worker: nothing between intervals, no CPU copy at all until someone reads."""
from __future__ import annotations

import torch

from modules.jobs import preview
from modules.jobs.progress import JobContext


def running_context(**kwargs) -> JobContext:
    ctx = JobContext("job1", **kwargs)
    ctx._set_state("running")
    ctx.set_total(12, 1)
    return ctx


class CountingLatents:
    """Stands in for the latents: records every attribute the progress code touches."""

    def __init__(self):
        self.touched: list[str] = []

    def __getattr__(self, name):
        self.touched.append(name)
        raise AttributeError(name)


def test_previews_off_never_touch_the_latents():
    ctx = running_context(preview_every_n_steps=0)
    latents = CountingLatents()
    for step in range(12):
        ctx.step(step, latents)
    assert latents.touched == [] and ctx.snapshot().preview is None


def test_worker_makes_no_cpu_copy_and_the_image_is_built_only_when_read(monkeypatch):
    copies, renders = [], []
    real_cpu, real_render = torch.Tensor.cpu, preview.rgb_to_preview
    monkeypatch.setattr(torch.Tensor, "cpu", lambda self, *a, **k: copies.append(1) or real_cpu(self, *a, **k))
    monkeypatch.setattr(preview, "rgb_to_preview", lambda *a, **k: renders.append(1) or real_render(*a, **k))
    ctx = running_context(preview_every_n_steps=3)
    latents = torch.randn(1, 4, 8, 8)
    for step in range(12):
        ctx.step(step, latents)
    # The worker thread: no device->CPU copy (a sync on a GPU), no PIL image, on any step.
    assert copies == [] and renders == []
    snap = ctx.snapshot()
    assert snap.preview_id == 4 and snap.preview.size == (8, 8)  # steps 3, 6, 9, 12
    assert len(renders) == 1 and len(copies) == 1  # only the latest preview, once, for its reader
    again = ctx.snapshot()
    assert again.preview is snap.preview and len(renders) == 1  # cached until a new one comes


def test_lazy_preview_shows_the_latents_of_its_step():
    ctx = running_context(preview_every_n_steps=2)
    first, second = torch.full((1, 4, 2, 2), -1.0), torch.full((1, 4, 2, 2), 1.0)
    ctx.step(0, first)
    ctx.step(1, first)  # preview of `first`
    ctx.step(2, second)  # not a preview step
    assert ctx.snapshot().preview.tobytes() == preview.latents_to_preview(first).tobytes()
