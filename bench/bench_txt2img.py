"""Time per sampling step of our txt2img (generate_txt2img with a job context) vs the plain diffusers call.

Both run the same pipeline, sampler (Euler), size, CFG and prompts in one process, interleaved, so load on
the machine hits both alike. Per-step time is the slope between a short and a long run, which separates
the per-step cost (UNet, scheduler, our step callbacks) from the fixed cost (prompt encoding, VAE decode,
our seeds and infotext); the end-to-end ratio of the long run is printed too.

    venv/bin/python bench/bench_txt2img.py [--steps 20] [--size 256] [--repeats 3] [--model demo|tiny]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

PROMPT, NEGATIVE = "a lighthouse on a cliff, stormy sea, (dramatic light:1.2)", "blurry, lowres"


def build_model(kind: str):
    """A LoadedModel over the demo checkpoint's pipeline (random weights, SD1.5 layout) or the tiny one."""
    from modules.devices import MemoryPolicy
    from modules.pipelines.manager import LoadedModel
    from modules.pipelines.registry import CheckpointInfo

    if kind == "demo":
        from modules.pipelines.demo import build_demo_pipeline

        pipe = build_demo_pipeline()
    else:
        from tests.fixtures.tiny_models import build_tiny_sd15_pipeline

        pipe = build_tiny_sd15_pipeline()
    pipe.set_progress_bar_config(disable=True)
    info = CheckpointInfo(path=Path(f"{kind}.safetensors"), name=f"{kind}.safetensors", model_name=kind)
    return LoadedModel(info, pipe, "sd1", "sd15", MemoryPolicy())


def run_ours(model, steps: int, size: int) -> float:
    from modules.generation.txt2img import generate_txt2img
    from modules.jobs.progress import JobContext
    from modules.types import GenerationRequest

    request = GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, steps=steps, width=size, height=size,
                                sampler_name="Euler", cfg_scale=7.0, seed=1234)
    start = time.perf_counter()
    result = generate_txt2img(model, request, progress=JobContext("bench"))
    elapsed = time.perf_counter() - start
    assert len(result.images) == 1
    return elapsed


def run_plain(model, steps: int, size: int) -> float:
    from modules.samplers import build_scheduler, find_sampler, find_schedule, model_scheduler_config

    pipe = model.pipe
    original = pipe.scheduler
    pipe.scheduler = build_scheduler(model_scheduler_config(original), find_sampler("Euler"),
                                     find_schedule("Automatic"))
    try:
        start = time.perf_counter()
        pipe(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=steps, guidance_scale=7.0,
             width=size, height=size, generator=torch.Generator("cpu").manual_seed(1234))
        return time.perf_counter() - start
    finally:
        pipe.scheduler = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps of the long run (the short run has 2)")
    parser.add_argument("--size", type=int, default=256, help="image width and height in pixels")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind; medians are reported")
    parser.add_argument("--model", choices=["demo", "tiny"], default="demo")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = build_model(args.model)
    short, long = 2, max(args.steps, 3)
    runners = {"ours": run_ours, "diffusers": run_plain}
    for runner in runners.values():  # warm-up: first calls pay for kernel selection and lazy imports
        runner(model, short, args.size)
    times: dict[tuple[str, int], list[float]] = {(name, n): [] for name in runners for n in (short, long)}
    for _ in range(args.repeats):
        for n in (short, long):
            for name, runner in runners.items():  # interleaved: load changes hit both the same way
                times[(name, n)].append(runner(model, n, args.size))

    med = {key: statistics.median(values) for key, values in times.items()}
    per_step = {name: (med[(name, long)] - med[(name, short)]) / (long - short) for name in runners}
    print(f"model {args.model}, {args.size}x{args.size}, Euler, CFG 7, {long} vs {short} steps, "
          f"{args.repeats} repeats, {torch.get_num_threads()} threads")
    for name in runners:
        step_ms, total = per_step[name] * 1000, med[(name, long)]
        print(f"  {name:9s} {step_ms:8.1f} ms/step   {total:7.3f} s for {long} steps")
    print(f"per-step ratio ours/diffusers: {per_step['ours'] / per_step['diffusers']:.3f}")
    print(f"end-to-end ratio ({long} steps): {med[('ours', long)] / med[('diffusers', long)]:.3f}")


if __name__ == "__main__":
    main()
