"""What live previews cost a sampling step: the same txt2img job with a preview after every step vs none.

Runs interleave (none, every step, none, ...) in one process on the demo checkpoint so machine load hits
both alike; a reader thread polls the job's snapshot 4 times a second as the page does, so the lazy
previews are really built. Reports median seconds per step for each and their ratio, plus the worker-side
cost of one preview (latent -> RGB kernels) measured alone.

    venv/bin/python bench/bench_previews.py [--size 512] [--steps 20] [--repeats 5]

`measure(size, steps, repeats)` returns the figures for bench/run.py.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for var, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("DIFFUSERS_VERBOSITY", "error"),
                   ("TRANSFORMERS_VERBOSITY", "error")):
    os.environ.setdefault(var, value)

POLL_SECONDS = 0.25  # as webui/ui/components/runner.py polls


def build_ctx(data_dir: Path):
    from modules.context import build_context, load_initial_model
    from modules.flags import parse_flags

    ctx = build_context(parse_flags(["--data-dir", str(data_dir), "--no-download-sd-model"]), ROOT)
    ctx.jobs.submit("load-model", lambda job_ctx: load_initial_model(ctx)).wait()
    return ctx


def time_job(ctx, request, every: int) -> tuple[float, int]:
    """(seconds per step, previews the reader saw) for one job with a preview every `every` steps."""
    from modules.generation.service import run_generation
    from modules.jobs.progress import JobContext

    job_ctx = JobContext("bench", preview_every_n_steps=every)
    job_ctx._set_state("running")
    done, seen = threading.Event(), set()

    def poll() -> None:
        while not done.wait(POLL_SECONDS):
            snap = job_ctx.snapshot()
            if snap.preview is not None:
                seen.add(snap.preview_id)

    reader = threading.Thread(target=poll, daemon=True)
    reader.start()
    start = time.perf_counter()
    run_generation(ctx, request, job_ctx)
    seconds = time.perf_counter() - start
    done.set()
    reader.join()
    return seconds / request.steps, len(seen)


def time_preview_kernels(size: int, repeats: int = 50) -> float:
    """Median seconds the worker spends on one preview (latent -> RGB on the latents' device)."""
    import torch

    from modules.jobs.preview import latents_to_rgb_on_device

    latents = torch.randn(1, 4, size // 8, size // 8)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        latents_to_rgb_on_device(latents)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(size: int = 512, steps: int = 20, repeats: int = 5) -> dict[str, float]:
    """{"step_none", "step_every" (median s/step), "ratio" (every / none), "preview_kernels" (s)}."""
    from webui.ui import forms  # the UI's own request building, so the job is what Generate submits

    ctx = build_ctx(Path(tempfile.mkdtemp(prefix="bench-previews-")))
    values = {"prompt": "a lighthouse at dusk", "negative_prompt": "", "sampler_name": "Euler",
              "scheduler": "Automatic", "steps": steps, "width": size, "height": size, "n_iter": 1,
              "batch_size": 1, "cfg_scale": 7.0, "seed": 1234, "styles": [], "script_name": "None"}
    request = forms.request_from_values("txt2img", values)
    none, every = [], []
    try:
        time_job(ctx, request, 0)  # warm-up
        for _ in range(repeats):
            none.append(time_job(ctx, request, 0)[0])
            every.append(time_job(ctx, request, 1)[0])
    finally:
        ctx.close()
    out = {"step_none": statistics.median(none), "step_every": statistics.median(every)}
    out["ratio"] = out["step_every"] / out["step_none"]
    out["preview_kernels"] = time_preview_kernels(size)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    out = measure(args.size, args.steps, args.repeats)
    print(f"txt2img {args.size}x{args.size}, {args.steps} steps, demo checkpoint, median of {args.repeats}, "
          f"load average {os.getloadavg()[0]:.1f}:")
    print(f"  per step, no previews         {out['step_none'] * 1000:8.1f} ms")
    print(f"  per step, preview every step  {out['step_every'] * 1000:8.1f} ms")
    print(f"  ratio                         {out['ratio']:8.3f}x")
    print(f"  one preview on the worker     {out['preview_kernels'] * 1000:8.3f} ms "
          f"({out['preview_kernels'] / out['step_none'] * 100:.2f}% of a step)")


if __name__ == "__main__":
    main()
