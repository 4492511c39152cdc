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
# What plain diffusers does for each policy: the same pipeline on the device, diffusers' model offload
# (one component on the GPU at a time, as --medvram) and its sequential offload (layer by layer, --lowvram).
DIFFUSERS_MODES = {"diffusers": "none", "diffusers-model-offload": "model",
                   "diffusers-sequential-offload": "sequential"}
REFERENCE_FOR = {"normal": "diffusers", "medvram": "diffusers-model-offload",
                 "lowvram": "diffusers-sequential-offload"}


def child(mode: str, ckpt: Path, config: Path, size: int = 64, steps: int = 2, via: str = "app") -> dict:
    """Run one generation in this process; returns peak RSS (MiB) and, on CUDA, peak VRAM (MiB).

    via "app": the app's start-up path (build_context: settings, extensions, scripts, upscalers, then the
    model); via "loader": our pipeline manager and generation code alone, the same load and placement
    without the rest of the app (the GPU bench uses it: the device machine has no Gradio)."""
    import torch

    prompt = {"prompt": "a lighthouse", "steps": steps, "width": size, "height": size, "seed": 1}
    if mode in DIFFUSERS_MODES:
        run_diffusers(DIFFUSERS_MODES[mode], ckpt, config, size, steps)
    elif via == "loader":
        run_loader(mode, ckpt, config, size, steps)
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
    out = {"rss_mib": peak_rss_mib()}
    if torch.cuda.is_available():
        out["vram_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def peak_rss_mib() -> float:
    """This process's peak RSS since it started its program (Linux: VmHWM).

    Not getrusage's ru_maxrss: Linux carries that over fork and exec, so a child reports at least the peak of
    the parent it was forked from (a parent that had just written a 2 GB checkpoint made every child read
    over 6 GB)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_loader(mode: str, ckpt: Path, config: Path, size: int, steps: int) -> None:
    """Our PipelineManager under the policy the app picks for this machine and the mode's flag, then one job."""
    from modules.devices import DeviceFlags, choose_policy, detect_device
    from modules.generation.txt2img import generate_txt2img
    from modules.jobs.progress import JobContext
    from modules.pipelines.manager import PipelineManager
    from modules.pipelines.registry import CheckpointInfo
    from modules.types import GenerationRequest

    flags = DeviceFlags(medvram=mode == "medvram", lowvram=mode == "lowvram")
    device = detect_device()
    manager = PipelineManager(lambda family: choose_policy(device, flags, family))
    model = manager.load(CheckpointInfo(path=ckpt, name=ckpt.name, model_name=ckpt.stem), config)
    request = GenerationRequest(prompt="a lighthouse", steps=steps, width=size, height=size, seed=1,
                                sampler_name="Euler", save_images=False)
    generate_txt2img(model, request, progress=JobContext("bench-memory"))
    print(f"policy: {model.policy.label}", file=sys.stderr)


def run_diffusers(offload: str, ckpt: Path, config: Path, size: int, steps: int) -> None:
    """Plain diffusers: from_single_file of the same file and config, float16 on CUDA (as the app's policy),
    placed per `offload`, then the same call."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    from modules.paths import CONFIGS_DIR

    cuda = torch.cuda.is_available()
    # The bundled tokenizers, as our loader gives them: config folders such as demo-tiny ship none, and
    # diffusers' fallback has no model_max_length (encoding overflows).
    tokenizers = {"tokenizer": CLIPTokenizer.from_pretrained(CONFIGS_DIR / "tokenizers" / "clip")}
    cls = StableDiffusionPipeline
    if (config / "text_encoder_2").is_dir():  # SDXL base
        cls = StableDiffusionXLPipeline
        tokenizers["tokenizer_2"] = CLIPTokenizer.from_pretrained(CONFIGS_DIR / "tokenizers" / "clip-pad-excl")
    pipe = cls.from_single_file(str(ckpt), config=str(config), local_files_only=True,
                                torch_dtype=torch.float16 if cuda else torch.float32, **tokenizers)
    if cuda and offload == "model":
        pipe.enable_model_cpu_offload()
    elif cuda and offload == "sequential":
        pipe.enable_sequential_cpu_offload()
    elif cuda:
        pipe.to("cuda")
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    with torch.no_grad():
        pipe("a lighthouse", num_inference_steps=steps, width=size, height=size,
             generator=torch.Generator("cpu").manual_seed(1))


def run_child(mode: str, ckpt: Path, config: Path, size: int = 64, steps: int = 2, via: str = "app") -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, "--ckpt", str(ckpt), "--config", str(config),
                           "--size", str(size), "--steps", str(steps), "--via", via],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{mode} child failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return json.loads(lines[-1])


def measure_memory(ckpt: Path, config: Path, label: str, size: int = 64, steps: int = 2,
                   offload_references: bool = False, workers: int = 0, via: str = "app") -> list[Row]:
    """One row per policy and figure (peak RSS; peak VRAM on CUDA). The reference is plain diffusers on the
    device for every policy, or with `offload_references` diffusers' own offload for medvram / lowvram.
    `workers` children run at a time (0: all at once); `via`: see child()."""
    modes = [*(DIFFUSERS_MODES if offload_references else ["diffusers"]), *POLICIES]
    with ThreadPoolExecutor(workers or len(modes)) as pool:
        futures = {mode: pool.submit(run_child, mode, ckpt, config, size, steps, via) for mode in modes}
    results: dict[str, dict | BaseException] = {}
    for mode, future in futures.items():
        try:
            results[mode] = future.result()
        except Exception as exc:  # noqa: BLE001 - that row shows the error
            results[mode] = exc
    rows: list[Row] = []
    has_vram = any(isinstance(r, dict) and "vram_mib" in r for r in results.values())
    for key, unit_name in (("rss_mib", "peak RSS"), ("vram_mib", "peak VRAM")):
        if key == "vram_mib" and not has_vram:
            continue  # no CUDA: no VRAM rows
        for mode in POLICIES:
            reference = REFERENCE_FOR[mode] if offload_references else "diffusers"
            name = f"{unit_name}, {mode}"
            ours, base = results[mode], results[reference]
            if isinstance(ours, BaseException) or isinstance(base, BaseException):
                rows.append(error_row(name, ours if isinstance(ours, BaseException) else base))
                continue
            rows.append(Row(name=name, ours=ours[key], reference=base[key], unit="MiB",
                            ratio=ours[key] / base[key], spread=None,
                            note=f"{label}, one txt2img {size}x{size} {steps} steps, child process each"
                                 f"{' (our loader, no app)' if via == 'loader' else ''}; "
                                 f"reference: {reference.replace('-', ' ')}"))
    return rows


def measure(quick: bool) -> list[Row]:
    from modules.paths import CONFIGS_DIR
    from modules.pipelines.demo import DEMO_CONFIG_DIR, ensure_demo_checkpoint

    if quick:
        folder = Path(tempfile.mkdtemp(prefix="bench-mem-demo-"))
        return measure_memory(ensure_demo_checkpoint(folder), DEMO_CONFIG_DIR, "demo checkpoint")
    from bench.bench_switch import full_size_sd15_file

    # two at a time: four SD 1.5-size children at once would need more than the 24 GiB of this machine
    return measure_memory(full_size_sd15_file(), CONFIGS_DIR / "sd15", "SD 1.5-size file", workers=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", choices=[*DIFFUSERS_MODES, *POLICIES], help=argparse.SUPPRESS)
    parser.add_argument("--ckpt", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--via", choices=["app", "loader"], default="app", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.ckpt, args.config, args.size, args.steps, args.via)))
        return
    print(format_table(measure(args.quick)))


if __name__ == "__main__":
    main()
