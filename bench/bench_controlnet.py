"""ControlNet: time per sampling step of our txt2img with one unit (the real job path: AppContext, queue,
the extension's UNet hook) vs plain diffusers' StableDiffusionControlNetPipeline on the same model weights,
ControlNet weights, control image, sampler (Euler), CFG, size and seed; and the time to add a unit to an
already loaded checkpoint (first use loads the ControlNet file; the base model is never reloaded).

Runs alternate (ours, diffusers, ours, ...) so machine load hits both alike; per-step time is the slope
between a short and a long run (fixed costs such as prompt encoding and VAE decode cancel out).

    venv/bin/python bench/bench_controlnet.py [--steps 12] [--size 256] [--repeats 3] [--threads 0]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from PIL import Image, ImageDraw

PROMPT, NEGATIVE = "a lighthouse on a cliff, stormy sea", "blurry, lowres"
MODEL_NAME = "control_bench_sd15"


def control_image(size: int) -> Image.Image:
    image = Image.new("RGB", (size, size), "black")
    draw = ImageDraw.Draw(image)
    draw.rectangle([size // 5, size // 4, size // 2, size * 4 // 5], outline="white", width=3)
    draw.ellipse([size // 2, size // 6, size * 9 // 10, size // 2], outline="white", width=3)
    return image


def build_ctx(root: Path):
    from modules.context import build_context, load_initial_model
    from modules.flags import parse_flags
    from modules.pipelines.demo import ensure_demo_checkpoint
    from tests.fixtures.controlnets import write_controlnet_file

    ckpt_dir = root / "Stable-diffusion"
    ckpt = ensure_demo_checkpoint(ckpt_dir)
    flags = parse_flags(["--data-dir", str(root / "data"), "--ckpt-dir", str(ckpt_dir), "--ckpt", str(ckpt),
                         "--no-download-sd-model", "--nowebui", "--controlnet-dir", str(root / "ControlNet")],
                        environ={}, project_root=ROOT)
    ctx = build_context(flags, ROOT)
    load_initial_model(ctx)
    assert ctx.model_error is None, ctx.model_error
    pipe = ctx.pipelines.current.pipe
    # A ControlNet shaped like the demo UNet (8x VAE: the real six-block hint encoder), saved in LDM layout.
    written = write_controlnet_file(pipe.unet, root / "ControlNet", MODEL_NAME, family="sd1", seed=3,
                                    vae_scale_factor=pipe.vae_scale_factor)
    return ctx, written


def run_ours(ctx, image_b64: str, steps: int, size: int) -> float:
    from modules.generation.service import submit_generation
    from modules.types import GenerationRequest

    unit = {"enabled": True, "module": "none", "model": MODEL_NAME, "weight": 1.0, "image": image_b64,
            "resize_mode": "Just Resize"}
    request = GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, steps=steps, width=size, height=size,
                                sampler_name="Euler", cfg_scale=7.0, seed=1234, save_images=False,
                                extensions={"controlnet": {"args": [unit]}})
    start = time.perf_counter()
    job = submit_generation(ctx, request)
    result = job.wait_result(600)
    elapsed = time.perf_counter() - start
    assert job.state == "done", job.error
    assert "ControlNet 0" in result.infotexts[0]
    return elapsed


def run_plain(reference, image: Image.Image, steps: int, size: int) -> float:
    start = time.perf_counter()
    reference(prompt=PROMPT, negative_prompt=NEGATIVE, image=image, num_inference_steps=steps,
              guidance_scale=7.0, width=size, height=size, generator=torch.Generator("cpu").manual_seed(1234))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="steps of the long run (the short run has 2)")
    parser.add_argument("--size", type=int, default=256, help="image width and height in pixels")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind; medians are reported")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import base64
    import io

    from diffusers import EulerDiscreteScheduler, StableDiffusionControlNetPipeline

    with tempfile.TemporaryDirectory(prefix="bench-controlnet-") as tmp:
        ctx, written = build_ctx(Path(tmp))
        try:
            image = control_image(args.size)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            image_b64 = base64.b64encode(buffer.getvalue()).decode()
            model = ctx.pipelines.current
            pipe, unet = model.pipe, model.pipe.unet

            # 1. Adding a unit to the loaded checkpoint: the first job loads the ControlNet file.
            short, long = 2, max(args.steps, 3)
            first = run_ours(ctx, image_b64, short, args.size)
            again = run_ours(ctx, image_b64, short, args.size)
            assert ctx.pipelines.current is model and model.pipe.unet is unet, "base model reloaded"
            [hook] = [h for h in ctx.extensions.hooks.hooks("patch_pipeline") if h.extension == "controlnet"]
            library = hook.fn.__self__.library
            entry = library.find(MODEL_NAME)
            controlnet = library.load(entry, device=unet.device, dtype=unet.dtype,
                                      unet_config=dict(unet.config))

            # 2. The reference: diffusers' ControlNet pipeline over the same modules and ControlNet weights.
            reference = StableDiffusionControlNetPipeline(**{k: v for k, v in pipe.components.items()
                                                             if k != "image_encoder"}, controlnet=controlnet)
            reference.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
            reference.set_progress_bar_config(disable=True)
            run_plain(reference, image, short, args.size)  # warm-up

            kinds = ("ours", "diffusers")
            times: dict[tuple[str, int], list[float]] = {(k, n): [] for k in kinds for n in (short, long)}
            for _ in range(args.repeats):
                for n in (short, long):
                    times[("ours", n)].append(run_ours(ctx, image_b64, n, args.size))
                    times[("diffusers", n)].append(run_plain(reference, image, n, args.size))
            med = {key: statistics.median(values) for key, values in times.items()}
            per_step = {k: (med[(k, long)] - med[(k, short)]) / (long - short) for k in ("ours", "diffusers")}
            size_mb = written.path.stat().st_size / 2**20
            print(f"demo SD1.5-layout model + ControlNet ({size_mb:.0f} MB LDM file), "
                  f"{args.size}x{args.size}, Euler, CFG 7, {long} vs {short} steps, {args.repeats} repeats, "
                  f"{torch.get_num_threads()} threads")
            print("| run | ms/step | s for long run |")
            print("|---|---:|---:|")
            for k in ("ours", "diffusers"):
                print(f"| {k} | {per_step[k] * 1000:.1f} | {med[(k, long)]:.3f} |")
            ratio = per_step["ours"] / per_step["diffusers"]
            print(f"per-step ratio ours/diffusers: {ratio:.3f} (goal <= 1.03)")
            print(f"end-to-end ratio ({long} steps): {med[('ours', long)] / med[('diffusers', long)]:.3f}")
            print(f"add a unit to the loaded checkpoint: first job {first:.3f} s (loads the ControlNet), "
                  f"next job {again:.3f} s, difference {first - again:.3f} s; base model not reloaded")
        finally:
            ctx.close()


if __name__ == "__main__":
    main()
