"""What live previews cost a sampling step: the same txt2img job with no previews, and with a preview after
every step by each method (Approx cheap, Approx NN, TAESD), then the default setting derived from them.

Runs alternate (ABBA) in one process on the demo checkpoint so machine load hits all alike. A reader thread
polls the job's snapshot as the page's stream does, and encodes each new preview as the stream does (JPEG,
webui/ui/components/runner.preview_html), so the lazy previews are really built and their reader-side cost
(on a CPU box it shares the cores) counts too. TAESD runs TAESD's own architecture with random weights (the
cost of the real file; no download).
"Approx NN" has no network of ours yet and falls back to the cheap latent->RGB map, as the app does.

    venv/bin/python bench/bench_previews.py [--size 128] [--steps 4] [--repeats 5] [--threads 1]

`measure(quick)` gives bench/run.py its rows; `measure_costs(size, steps, repeats)` the raw samples.
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

from bench._common import Row, alternate, ratio_row  # noqa: E402

POLL_SECONDS = 0.25  # webui/ui/components/runner.py's first look; later ones are 1 s apart
DEFAULT_EVERY = 10  # A1111's show_progress_every_n_steps default
METHODS = ("Approx cheap", "Approx NN", "TAESD")


def build_ctx(data_dir: Path):
    from modules.context import build_context, load_initial_model
    from modules.flags import parse_flags

    ctx = build_context(parse_flags(["--data-dir", str(data_dir), "--no-download-sd-model"]), ROOT)
    ctx.jobs.submit("load-model", lambda job_ctx: load_initial_model(ctx)).wait()
    return ctx


def write_random_taesd(folder: Path) -> Path:
    """TAESD's decoder (diffusers' AutoencoderTiny default config) with random weights, as the app finds it."""
    import torch
    from diffusers import AutoencoderTiny
    from safetensors.torch import save_file

    torch.manual_seed(0)
    decoder = AutoencoderTiny().decoder
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "taesd_decoder.safetensors"
    save_file({f"decoder.{k}": v.contiguous() for k, v in decoder.state_dict().items()}, str(path))
    return path


def time_job(ctx, request, every: int, decoder=None) -> float:
    """Seconds per step of one job with a preview every `every` steps (0 = none) by `decoder`."""
    from modules.generation.service import run_generation
    from modules.jobs.progress import JobContext
    from webui.ui.components.runner import preview_html

    job_ctx = JobContext("bench", preview_every_n_steps=every, preview_decoder=decoder)
    job_ctx._set_state("running")
    done = threading.Event()

    def poll() -> None:
        seen = 0
        while not done.wait(POLL_SECONDS):
            snap = job_ctx.snapshot()
            if snap.preview is not None and snap.preview_id != seen:
                seen = snap.preview_id
                preview_html(snap.preview)  # what the progress stream does with each new preview

    reader = threading.Thread(target=poll, daemon=True)
    reader.start()
    start = time.perf_counter()
    run_generation(ctx, request, job_ctx)
    seconds = time.perf_counter() - start
    done.set()
    reader.join()
    return seconds / request.steps


def measure_costs(size: int = 128, steps: int = 4, repeats: int = 5) -> dict[str, list[float]]:
    """Seconds per step of each repeat: "none" and one list per method with a preview every step."""
    from modules.jobs.taesd import PreviewDecoders
    from webui.ui import forms  # the UI's own request building, so the job is what Generate submits

    ctx = build_ctx(Path(tempfile.mkdtemp(prefix="bench-previews-")))
    folder = ctx.paths.models_dir / "VAE-approx"
    write_random_taesd(folder)
    values = {"prompt": "a lighthouse at dusk", "negative_prompt": "", "sampler_name": "Euler",
              "scheduler": "Automatic", "steps": steps, "width": size, "height": size, "n_iter": 1,
              "batch_size": 1, "cfg_scale": 7.0, "seed": 1234, "styles": [], "script_name": "None"}
    request = forms.request_from_values("txt2img", values)
    decoders = {name: PreviewDecoders(folder, name) for name in METHODS}
    runs = {"none": lambda: time_job(ctx, request, 0)}
    runs.update({name: (lambda d=d: time_job(ctx, request, 1, d)) for name, d in decoders.items()})
    try:
        for fn in runs.values():
            fn()  # warm-up: first-call costs (scheduler build, TAESD load)
        return alternate(runs, repeats)
    finally:
        ctx.close()


def rows_from(times: dict[str, list[float]], size: int, steps: int) -> list[Row]:
    note = f"{size}x{size}, {steps} steps, demo checkpoint, preview every step"
    rows = [ratio_row(f"live preview every step, {name} / none", times[name], times["none"], "ms/step", 1000,
                      note=note) for name in METHODS]
    # The default setting previews every 10th step: a tenth of the every-step extra cost lands on each step.
    default = [n + (e - n) / DEFAULT_EVERY for e, n in zip(times["Approx NN"], times["none"])]
    rows.append(ratio_row(f"live previews at the default (every {DEFAULT_EVERY} steps, Approx NN) / none", default,
                          times["none"], "ms/step", 1000, note="goal: ratio < 1.02"))
    return rows


def measure(quick: bool = False) -> list[Row]:
    size, steps, repeats = (128, 4, 4) if quick else (512, 20, 5)
    return rows_from(measure_costs(size, steps, repeats), size, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: no contention on a shared box)")
    args = parser.parse_args()
    import torch

    from bench._common import format_table

    torch.set_num_threads(args.threads)
    times = measure_costs(args.size, args.steps, args.repeats)
    print(f"load average {os.getloadavg()[0]:.1f}; median s/step: "
          + ", ".join(f"{k} {statistics.median(v) * 1000:.1f} ms" for k, v in times.items()))
    print(format_table(rows_from(times, args.size, args.steps)))


if __name__ == "__main__":
    main()
