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

from bench._common import Row, format_table, ratio_row, slope_samples

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


def measure_controlnet(size: int, steps: int, repeats: int) -> list[Row]:
    """Per-step ours vs diffusers' ControlNet pipeline, and adding a unit (first job vs the next one)."""
    import base64
    import io

    from diffusers import EulerDiscreteScheduler, StableDiffusionControlNetPipeline

    with tempfile.TemporaryDirectory(prefix="bench-controlnet-") as tmp:
        ctx, written = build_ctx(Path(tmp))
        try:
            image = control_image(size)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            image_b64 = base64.b64encode(buffer.getvalue()).decode()
            model = ctx.pipelines.current
            pipe, unet = model.pipe, model.pipe.unet

            # 1. Adding a unit to the loaded checkpoint: the first job loads the ControlNet file.
            short, long = 2, max(steps, 3)
            first = run_ours(ctx, image_b64, short, size)
            again = run_ours(ctx, image_b64, short, size)
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
            run_plain(reference, image, short, size)  # warm-up

            kinds = ("ours", "diffusers")
            times: dict[tuple[str, int], list[float]] = {(k, n): [] for k in kinds for n in (short, long)}
            for i in range(repeats):
                for n in (short, long):
                    runs = [("ours", lambda n=n: run_ours(ctx, image_b64, n, size)),
                            ("diffusers", lambda n=n: run_plain(reference, image, n, size))]
                    for k, fn in (runs if i % 2 == 0 else runs[::-1]):
                        times[(k, n)].append(fn())
            size_mb = written.path.stat().st_size / 2**20  # inside: the temp folder goes with the block
        finally:
            ctx.close()
    note = (f"demo SD1.5-layout model + ControlNet ({size_mb:.0f} MB LDM file), {size}x{size}, Euler, CFG 7, "
            f"{long} vs {short} steps, {repeats} repeats")
    ours, plain = (slope_samples(times, k, short, long) for k in ("ours", "diffusers"))
    return [ratio_row("ControlNet per step, one unit", ours, plain, "ms/step", 1000, note),
            ratio_row(f"ControlNet end to end, {long} steps", times[("ours", long)], times[("diffusers", long)],
                      "s", 1.0, note),
            ratio_row("ControlNet unit added: first job / next job", [first], [again], "s", 1.0,
                      f"{short} steps; the first job loads the ControlNet file, the base model is not reloaded")]


def measure(quick: bool) -> list[Row]:
    # quick: 2 repeats and 6 vs 2 steps; one repeat of 4 vs 2 gave a negative slope under load ~15
    return measure_controlnet(64 if quick else 256, 6 if quick else 12, 2 if quick else 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="steps of the long run (the short run has 2)")
    parser.add_argument("--size", type=int, default=256, help="image width and height in pixels")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind; medians are reported")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = measure_controlnet(args.size, args.steps, args.repeats)
    print(f"{rows[0].note}, {torch.get_num_threads()} threads")
    print(format_table(rows))


if __name__ == "__main__":
    main()
