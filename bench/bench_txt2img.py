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

from bench._common import Row, guarded, ratio_row, slope_samples

PROMPT, NEGATIVE = "a lighthouse on a cliff, stormy sea, (dramatic light:1.2)", "blurry, lowres"


def build_model(kind: str):
    """A LoadedModel over the demo checkpoint's pipeline (random weights, SD1.5 layout), the tiny one,
    "shapes": the trained demo model (configs/demo-shapes), or "sd15": the real SD 1.5 architecture
    (bundled configs/sd15, random init, about 1 B parameters)."""
    from modules.devices import MemoryPolicy
    from modules.pipelines.manager import LoadedModel
    from modules.pipelines.registry import CheckpointInfo

    if kind == "demo":
        from modules.pipelines.demo import build_demo_pipeline

        pipe = build_demo_pipeline()
    elif kind == "shapes":  # the trained demo model the repository ships (configs/demo-shapes)
        from modules.pipelines.demo import SHAPES_FILE
        from modules.pipelines.loading import load_pipeline

        if not SHAPES_FILE.is_file():
            raise FileNotFoundError(f"{SHAPES_FILE} is not in this checkout (tools/demo_model/train.py)")
        pipe, _ = load_pipeline(SHAPES_FILE)
    elif kind == "sd15":
        pipe = build_sd15_pipeline()
    else:
        from tests.fixtures.tiny_models import build_tiny_sd15_pipeline

        pipe = build_tiny_sd15_pipeline()
    pipe.set_progress_bar_config(disable=True)
    info = CheckpointInfo(path=Path(f"{kind}.safetensors"), name=f"{kind}.safetensors", model_name=kind)
    return LoadedModel(info, pipe, "sd1", "sd15", MemoryPolicy())


def build_sd15_pipeline():
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from modules.paths import CONFIGS_DIR
    from tests.fixtures.tiny_models import load_scheduler

    torch.manual_seed(0)
    config = CONFIGS_DIR / "sd15"
    return StableDiffusionPipeline(
        unet=UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config / "unet")).eval(),
        vae=AutoencoderKL.from_config(AutoencoderKL.load_config(config / "vae")).eval(),
        text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(config / "text_encoder")).eval(),
        tokenizer=CLIPTokenizer.from_pretrained(CONFIGS_DIR / "tokenizers" / "clip"),
        scheduler=load_scheduler("sd15"), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)


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


def measure_model(kind: str, size: int, short: int, long: int, repeats: int) -> list[Row]:
    """Per-step time of ours vs plain diffusers on one model (slope between `short` and `long` steps)."""
    with torch.no_grad():
        model = build_model(kind)
    runners = {"ours": run_ours, "diffusers": run_plain}
    for runner in runners.values():  # warm-up: first calls pay for kernel selection and lazy imports
        runner(model, short, size)
    times: dict[tuple[str, int], list[float]] = {(name, n): [] for name in runners for n in (short, long)}
    for i in range(repeats):
        for n in (short, long):
            order = list(runners.items()) if i % 2 == 0 else list(runners.items())[::-1]
            for name, runner in order:  # alternating: load changes hit both the same way
                times[(name, n)].append(runner(model, n, size))
    ours, plain = (slope_samples(times, k, short, long) for k in runners)
    note = f"{size}x{size}, Euler, CFG 7, {long} vs {short} steps, {repeats} repeats"
    return [ratio_row(f"txt2img per step, {kind}", ours, plain, "ms/step", 1000, note),
            ratio_row(f"txt2img end to end, {kind}, {long} steps", times[("ours", long)],
                      times[("diffusers", long)], "s", 1.0, note)]


def measure(quick: bool) -> list[Row]:
    """txt2img rows: tiny and demo models (small sizes), and the real SD 1.5 architecture at 512x512 for
    2 steps (slope between 1 and 2 steps; full runs only: one repeat takes minutes on a CPU)."""
    plan = [("tiny", 64, 2, 6, 3 if quick else 5), ("demo", 64 if quick else 256, 2, 6 if quick else 20,
                                                     2 if quick else 3),
            ("shapes", 128, 2, 20, 2 if quick else 3)]  # issue 16: a 20-step 128x128 image in a few seconds
    if not quick:
        plan.append(("sd15", 512, 1, 2, 1))
    rows: list[Row] = []
    for kind, size, short, long, repeats in plan:
        rows += guarded(f"txt2img per step, {kind}",
                        lambda k=kind, s=size, a=short, b=long, r=repeats: measure_model(k, s, a, b, r))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps of the long run (the short run has 2)")
    parser.add_argument("--size", type=int, default=256, help="image width and height in pixels")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind; medians are reported")
    parser.add_argument("--model", choices=["demo", "tiny", "sd15", "shapes"], default="demo")
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
