"""Peak memory of one generation per memory policy, each in its own child process (peak RSS only grows within
a process): ours = the app's start-up path (build_context with the flags, load the checkpoint, one txt2img
job, 64x64, 2 steps) under no flag, --medvram and --lowvram; reference = plain diffusers `from_single_file`
of the same file and the same call. On CUDA the peak VRAM (torch.cuda.max_memory_allocated) is reported too.
On a CPU the app ignores --medvram/--lowvram (they are about VRAM), so those rows should match normal.

The children run side by side: peak RSS does not depend on timing. The full run uses the SD 1.5-size file
of bench_switch; --quick the demo checkpoint.

    venv/bin/python bench/bench_memory.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for var, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("GRADIO_ANALYTICS_ENABLED", "False")):
    os.environ.setdefault(var, value)

from bench._common import Row, error_row, format_table  # noqa: E402

POLICIES = {"normal": [], "medvram": ["--medvram"], "lowvram": ["--lowvram"]}


def child(mode: str, ckpt: Path, config: Path) -> dict:
    """Run one generation in this process; returns peak RSS (MiB) and, on CUDA, peak VRAM (MiB)."""
    import torch

    prompt = {"prompt": "a lighthouse", "steps": 2, "width": 64, "height": 64, "seed": 1}
    if mode == "diffusers":
        from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline
        from transformers import CLIPTokenizer

        from modules.paths import CONFIGS_DIR

        # The bundled tokenizer, as our loader gives it: config folders such as demo-tiny ship none, and
        # diffusers' fallback has no model_max_length (encoding overflows).
        tokenizer = CLIPTokenizer.from_pretrained(CONFIGS_DIR / "tokenizers" / "clip")
        pipe = StableDiffusionPipeline.from_single_file(str(ckpt), config=str(config), local_files_only=True,
                                                        torch_dtype=torch.float32, tokenizer=tokenizer)
        if torch.cuda.is_available():
            pipe.to("cuda")
        pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        with torch.no_grad():
            pipe(prompt["prompt"], num_inference_steps=2, width=64, height=64,
                 generator=torch.Generator("cpu").manual_seed(1))
    else:
        from modules.context import build_context, load_initial_model
        from modules.flags import parse_flags
        from modules.generation.service import run_generation
        from modules.types import GenerationRequest

        data = Path(tempfile.mkdtemp(prefix="bench-mem-"))
        flags = parse_flags(["--data-dir", str(data), "--ckpt", str(ckpt), "--no-download-sd-model", "--nowebui",
                             *POLICIES[mode]], environ={}, project_root=ROOT)
        ctx = build_context(flags, ROOT)
        load_initial_model(ctx)
        assert ctx.model_error is None, ctx.model_error
        run_generation(ctx, GenerationRequest(**prompt, sampler_name="Euler", save_images=False))
        ctx.close()
    out = {"rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        out["vram_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def run_child(mode: str, ckpt: Path, config: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, "--ckpt", str(ckpt), "--config", str(config)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{mode} child failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return json.loads(lines[-1])


def measure_memory(ckpt: Path, config: Path, label: str) -> list[Row]:
    modes = ["diffusers", *POLICIES]
    with ThreadPoolExecutor(len(modes)) as pool:
        futures = {mode: pool.submit(run_child, mode, ckpt, config) for mode in modes}
    results: dict[str, dict | BaseException] = {}
    for mode, future in futures.items():
        try:
            results[mode] = future.result()
        except Exception as exc:  # noqa: BLE001 - that row shows the error
            results[mode] = exc
    rows: list[Row] = []
    base = results["diffusers"]
    for key, unit_name in (("rss_mib", "peak RSS"), ("vram_mib", "peak VRAM")):
        if key == "vram_mib" and not (isinstance(base, dict) and key in base):
            continue  # no CUDA: no VRAM rows
        for mode in POLICIES:
            name = f"{unit_name}, {mode}"
            ours = results[mode]
            if isinstance(ours, BaseException) or isinstance(base, BaseException):
                rows.append(error_row(name, ours if isinstance(ours, BaseException) else base))
                continue
            rows.append(Row(name=name, ours=ours[key], reference=base[key], unit="MiB",
                            ratio=ours[key] / base[key], spread=None,
                            note=f"{label}, one txt2img 64x64 2 steps, child process each; reference: diffusers"))
    return rows


def measure(quick: bool) -> list[Row]:
    from modules.paths import CONFIGS_DIR
    from modules.pipelines.demo import DEMO_CONFIG_DIR, ensure_demo_checkpoint

    if quick:
        folder = Path(tempfile.mkdtemp(prefix="bench-mem-demo-"))
        return measure_memory(ensure_demo_checkpoint(folder), DEMO_CONFIG_DIR, "demo checkpoint")
    from bench.bench_switch import full_size_sd15_file

    return measure_memory(full_size_sd15_file(), CONFIGS_DIR / "sd15", "SD 1.5-size file")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", choices=["diffusers", *POLICIES], help=argparse.SUPPRESS)
    parser.add_argument("--ckpt", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.ckpt, args.config)))
        return
    print(format_table(measure(args.quick)))


if __name__ == "__main__":
    main()
