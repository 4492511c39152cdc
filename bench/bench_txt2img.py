"""Time per sampling step of our txt2img (generate_txt2img with a job context) vs the plain diffusers call.

Both run the same pipeline, sampler (Euler), size, CFG and prompts in one process, alternating (ABBA), so
load on the machine hits both alike. Per-step time is the median interval between step ends inside a run
(bench/_step_clock.py): the per-step cost (UNet, scheduler, our step callbacks) without the fixed cost
(prompt encoding, VAE decode, our seeds and infotext); the end-to-end ratio is printed too.

    venv/bin/python bench/bench_txt2img.py [--steps 20] [--size 256] [--repeats 3] [--model demo|tiny]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

from bench._common import Row, alternate, format_table, guarded, ratio_row
from bench._step_clock import StepClock, diffusers_step_clock, step_seconds

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
    return build_random_pipeline("sd15")


def build_random_pipeline(config_name: str, device: str = "cpu"):
    """The pipeline of configs/<config_name> (sd15, sdxl-base, demo-tiny, ...) with random weights from seed 0,
    initialised on `device` (on a GPU that takes seconds where the CPU takes a minute for SDXL)."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from modules.paths import CONFIGS_DIR
    from tests.fixtures.tiny_models import load_scheduler

    config, tokenizers = CONFIGS_DIR / config_name, CONFIGS_DIR / "tokenizers"
    torch.manual_seed(0)
    with torch.device(device), torch.no_grad():
        parts = {"unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config / "unet")).eval(),
                 "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(config / "vae")).eval(),
                 "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(config / "text_encoder")).eval(),
                 "tokenizer": CLIPTokenizer.from_pretrained(tokenizers / "clip"),
                 "scheduler": load_scheduler(config_name)}
        if not (config / "text_encoder_2").is_dir():
            return StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                                           requires_safety_checker=False)
        parts["text_encoder_2"] = CLIPTextModelWithProjection(
            CLIPTextConfig.from_pretrained(config / "text_encoder_2")).eval()
        parts["tokenizer_2"] = CLIPTokenizer.from_pretrained(tokenizers / "clip-pad-excl")
        return StableDiffusionXLPipeline(**parts)


def run_ours(model, steps: int, size: int) -> tuple[float, float]:
    """(seconds end to end, seconds per step) of one job through generate_txt2img."""
    from modules.generation.txt2img import generate_txt2img
    from modules.types import GenerationRequest

    request = GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, steps=steps, width=size, height=size,
                                sampler_name="Euler", cfg_scale=7.0, seed=1234)
    clock = StepClock()
    start = time.perf_counter()
    result = generate_txt2img(model, request, progress=clock)
    elapsed = time.perf_counter() - start
    assert len(result.images) == 1 and len(clock.ends) == steps, len(clock.ends)
    return elapsed, step_seconds(clock.ends)


def run_plain(model, steps: int, size: int, cfg_scale: float = 7.0) -> tuple[float, float]:
    """(seconds end to end, seconds per step) of the plain diffusers call on the same pipeline."""
    from modules.samplers import build_scheduler, find_sampler, find_schedule, model_scheduler_config

    pipe = model.pipe
    original = pipe.scheduler
    pipe.scheduler = build_scheduler(model_scheduler_config(original), find_sampler("Euler"),
                                     find_schedule("Automatic"))
    ends: list[float] = []
    try:
        start = time.perf_counter()
        pipe(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=steps, guidance_scale=cfg_scale,
             width=size, height=size, generator=torch.Generator("cpu").manual_seed(1234),
             callback_on_step_end=diffusers_step_clock(ends))
        elapsed = time.perf_counter() - start
    finally:
        pipe.scheduler = original
    assert len(ends) == steps, len(ends)
    return elapsed, step_seconds(ends)


def measure_model(kind: str, size: int, steps: int, repeats: int) -> list[Row]:
    """Per-step time (median step interval of each run) and end-to-end time, ours vs plain diffusers."""
    with torch.no_grad():
        model = build_model(kind)
    runners = {"ours": run_ours, "diffusers": run_plain}
    for runner in runners.values():  # warm-up: first calls pay for kernel selection and lazy imports
        runner(model, 2, size)
    results = alternate({name: (lambda r=runner: r(model, steps, size)) for name, runner in runners.items()},
                        repeats)
    ours, plain = results["ours"], results["diffusers"]
    note = f"{size}x{size}, Euler, CFG 7, {steps} steps, {repeats} repeats"
    return [ratio_row(f"txt2img per step, {kind}", [s for _, s in ours], [s for _, s in plain], "ms/step", 1000,
                      note + "; median step interval per run"),
            ratio_row(f"txt2img end to end, {kind}, {steps} steps", [t for t, _ in ours], [t for t, _ in plain],
                      "s", 1.0, note)]


def measure(quick: bool) -> list[Row]:
    """txt2img rows: tiny and demo models (small sizes), and the real SD 1.5 architecture at 512x512 for
    2 steps (slope between 1 and 2 steps; full runs only: one repeat takes minutes on a CPU)."""
    plan = [("tiny", 64, 10, 3 if quick else 5), ("demo", 64 if quick else 256, 10 if quick else 20,
                                                  3 if quick else 7),
            ("shapes", 128, 20, 2 if quick else 3)]  # issue 16: a 20-step 128x128 image in a few seconds
    if not quick:
        plan.append(("sd15", 512, 2, 3))  # one step interval each; a repeat takes a minute on 2 cores
    rows: list[Row] = []
    for kind, size, steps, repeats in plan:
        rows += guarded(f"txt2img per step, {kind}",
                        lambda k=kind, s=size, n=steps, r=repeats: measure_model(k, s, n, r))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="sampling steps per run")
    parser.add_argument("--size", type=int, default=256, help="image width and height in pixels")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind; medians are reported")
    parser.add_argument("--model", choices=["demo", "tiny", "sd15", "shapes"], default="demo")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"load average {os.getloadavg()}, {torch.get_num_threads()} torch threads")
    print(format_table(measure_model(args.model, args.size, max(args.steps, 2), args.repeats)))


if __name__ == "__main__":
    main()
