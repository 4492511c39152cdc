"""The GPU figures of issue 17 in one prepared command for a lent GPU machine: the real SD 1.5 (512x512) and
SDXL (1024x1024) architectures with random float16 weights, Euler, CFG 7, 20 steps.

Each (part, architecture) runs in its own child process, in this order, until --deadline seconds are spent
(what is left becomes "skipped" rows); every row is written to --out the moment it is measured
(results.json, results.md, bench_gpu.log), so a run stopped at the device's time limit still returns what
it had:
- speed: per-step time of our txt2img (generate_txt2img under the memory policy the app picks for this card:
  float16, channels-last, ...) against plain diffusers on the same pipeline, alternating (ABBA). On a GPU the
  step-end clock of bench/_step_clock.py would time kernel launches, not kernels, so per step is the slope
  between a --steps and a --short job, each timed to its image on the host. Also end to end, it/s, CFG 1 vs
  CFG 7 and channels-last vs the contiguous UNet (both ours);
- memory: peak VRAM (torch.cuda.max_memory_allocated) and peak RSS of one job per memory policy (no flag,
  --medvram, --lowvram) through the app's start-up path on a full-size single-file checkpoint, one process
  each (bench_memory.measure_memory); references: plain diffusers from_single_file on the same file, on the
  GPU, with enable_model_cpu_offload (what --medvram does) and with enable_sequential_cpu_offload (--lowvram);
- compile: our torch.compile option (modules/performance/compile.py, mode default): the first job (the
  compile included) and the second, then per step compiled vs eager (ours) and ours vs diffusers on the
  compiled UNet.

    python bench/bench_gpu.py --out DIR [--archs sd15,sdxl] [--parts speed,memory,compile] [--deadline 540]

bench/gpu/run_on_device.sh is the whole device command (it installs the wheels the device lacks first).
Without CUDA the script refuses to run unless --allow-cpu is given; tests use that with small sizes to check
that every part still runs (the figures then mean nothing).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for var, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("DIFFUSERS_VERBOSITY", "error"),
                   ("TRANSFORMERS_VERBOSITY", "error"), ("PYTHONUNBUFFERED", "1")):
    os.environ.setdefault(var, value)

from bench._common import (  # noqa: E402
    Row,
    alternate,
    alternate_slopes,
    error_row,
    format_table,
    machine_info,
    ratio_row,
    results_document,
)

ROW_PREFIX = "ROW "  # a child's stdout line carrying one Row as JSON
PARTS = ("speed", "memory", "compile")


@dataclass(frozen=True)
class Arch:
    """One model architecture from our bundled configs and the size it is made for."""

    name: str
    config: str  # folder under configs/
    family: str  # MemoryPolicy family: "sd1" or "sdxl"
    architecture: str  # LoadedModel.architecture, as our loader names it
    size: int


ARCHS = {"sd15": Arch("sd15", "sd15", "sd1", "sd15", 512),
         "sdxl": Arch("sdxl", "sdxl-base", "sdxl", "sdxl-base", 1024),
         # the demo checkpoint's small SD 1.5 layout: for checking the script on a CPU in seconds
         "demo": Arch("demo", "demo-tiny", "sd1", "sd15", 64)}


@dataclass(frozen=True)
class Plan:
    """What one child measures (the command line's numbers, passed through)."""

    size: int
    steps: int
    short: int
    repeats: int
    memory_steps: int


# --- building and running ------------------------------------------------------------------------------------

def device_name() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def app_policy(arch: Arch):
    """The memory policy the app picks for this machine and family with no flags (float16 on a GPU, ...)."""
    from modules.devices import DeviceFlags, choose_policy, detect_device

    return choose_policy(detect_device(), DeviceFlags(), arch.family)  # type: ignore[arg-type]


def build_model(arch: Arch, policy):
    """A LoadedModel over the architecture's pipeline with random weights (initialised on the device: fast),
    placed by `policy` as the app places a loaded checkpoint."""
    from bench.bench_txt2img import build_random_pipeline
    from modules.pipelines.manager import LoadedModel
    from modules.pipelines.memory import apply_memory_policy
    from modules.pipelines.registry import CheckpointInfo

    pipe = build_random_pipeline(arch.config, policy.device if policy.offload == "none" else "cpu")
    pipe.set_progress_bar_config(disable=True)
    apply_memory_policy(pipe, policy)
    info = CheckpointInfo(path=Path(f"{arch.name}.safetensors"), name=f"{arch.name}.safetensors",
                          model_name=arch.name)
    return LoadedModel(info, pipe, arch.family, arch.architecture, policy)  # type: ignore[arg-type]


def ours(model, steps: int, size: int, cfg: float = 7.0) -> float:
    """Seconds of one txt2img job through our generation code, to the image on the host."""
    from bench.bench_compile import run

    return run(model, steps, size, cfg=cfg)


def diffusers(model, steps: int, size: int, cfg: float = 7.0) -> float:
    """Seconds of the plain diffusers call on the same pipeline (Euler, same seed), to the PIL image."""
    from bench.bench_txt2img import run_plain

    return run_plain(model, steps, size, cfg)[0]


def slopes(runners: dict, plan: Plan) -> dict[str, list[float]]:
    """{name: per-step seconds of each repeat}: a --short and a --steps job per runner and repeat, ABBA, after
    a warm-up job each (cuDNN/cuBLAS heuristics, lazy imports, allocator growth)."""
    return alternate_slopes(runners, plan.short, plan.steps, plan.repeats)


def its(seconds_per_step: list[float]) -> float:
    import statistics

    return 1.0 / statistics.median(seconds_per_step)


# --- the parts (each runs in a child process; rows go to stdout as they come) -----------------------------------

def emit(row: Row) -> None:
    print(ROW_PREFIX + json.dumps(asdict(row)), flush=True)


def speed(arch: Arch, plan: Plan) -> None:
    policy = app_policy(arch)
    model = build_model(arch, policy)
    size, label = plan.size, f"{arch.name} {plan.size}x{plan.size} {policy.dtype}"
    note = f"{label}, Euler, CFG 7, {plan.steps} vs {plan.short} steps, {plan.repeats} repeats; policy: {policy.label}"
    per_step = slopes({"ours": lambda n: ours(model, n, size), "diffusers": lambda n: diffusers(model, n, size)},
                      plan)
    emit(ratio_row(f"per step, {label}: ours vs diffusers", per_step["ours"], per_step["diffusers"], "ms/step",
                   1000, f"{note}; it/s ours {its(per_step['ours']):.2f}, diffusers {its(per_step['diffusers']):.2f}"))
    ends = alternate({"ours": lambda: ours(model, plan.steps, size),
                      "diffusers": lambda: diffusers(model, plan.steps, size)}, plan.repeats)
    emit(ratio_row(f"end to end, {label}, {plan.steps} steps: ours vs diffusers", ends["ours"], ends["diffusers"],
                   "s", 1.0, note))
    cfg = slopes({"cfg1": lambda n: ours(model, n, size, 1.0), "cfg7": lambda n: ours(model, n, size, 7.0)}, plan)
    emit(ratio_row(f"CFG 1 vs CFG 7 per step, {label}", cfg["cfg1"], cfg["cfg7"], "ms/step", 1000,
                   "ours; goal <= 0.6"))
    if policy.channels_last:
        import torch

        unet = model.pipe.unet

        def in_format(memory_format):
            def run(n):
                unet.to(memory_format=memory_format)
                return ours(model, n, size)
            return run

        formats = slopes({"channels_last": in_format(torch.channels_last),
                          "contiguous": in_format(torch.contiguous_format)}, plan)
        unet.to(memory_format=torch.channels_last)
        emit(ratio_row(f"channels-last vs contiguous UNet per step, {label}", formats["channels_last"],
                       formats["contiguous"], "ms/step", 1000, "ours; channels-last is the app's default on CUDA"))


def memory(arch: Arch, plan: Plan) -> None:
    from bench.bench_memory import measure_memory
    from bench.bench_switch import full_size_file
    from modules.paths import CONFIGS_DIR

    started = time.perf_counter()
    if arch.name == "demo":  # the demo checkpoint (our loader knows it by its metadata)
        import tempfile

        from modules.pipelines.demo import DEMO_CONFIG_DIR, ensure_demo_checkpoint

        path, config = ensure_demo_checkpoint(Path(tempfile.mkdtemp(prefix="bench-gpu-"))), DEMO_CONFIG_DIR
    else:
        path, config = full_size_file(arch.config), CONFIGS_DIR / arch.config
    written = time.perf_counter() - started
    label = f"{arch.name}-size file ({path.stat().st_size / 2**20:.0f} MiB, written in {written:.0f} s)"
    for row in measure_memory(path, config, label, size=plan.size, steps=plan.memory_steps,
                              offload_references=True, workers=3, via="loader"):
        emit(row)


def compile_part(arch: Arch, plan: Plan, mode: str = "default") -> None:
    from modules.performance.compile import is_compiled

    policy = app_policy(arch)
    eager = build_model(arch, policy)
    compiled = build_model(arch, replace(policy, compile_mode=mode))
    size, label = plan.size, f"{arch.name} {plan.size}x{plan.size} {policy.dtype}"
    first = ours(compiled, plan.short, size)
    second = ours(compiled, plan.short, size)
    base = ours(eager, plan.short, size)
    if not is_compiled(compiled.pipe.unet):
        emit(Row(f"torch.compile, {label}", None, None, "s", error="compile failed; it ran eagerly (see the log)"))
        return
    emit(Row(f"torch.compile first job vs eager, {label}", first, base, "s", first / base,
             note=f"{plan.short} steps, mode {mode}: includes the compile"))
    emit(Row(f"torch.compile second job vs eager, {label}", second, base, "s", second / base,
             note=f"{plan.short} steps, mode {mode}"))
    per_step = slopes({"compiled": lambda n: ours(compiled, n, size), "eager": lambda n: ours(eager, n, size),
                       "diffusers": lambda n: diffusers(compiled, n, size)}, plan)
    note = f"{plan.steps} vs {plan.short} steps, {plan.repeats} repeats, mode {mode}"
    emit(ratio_row(f"torch.compile vs eager per step, {label}", per_step["compiled"], per_step["eager"], "ms/step",
                   1000, f"ours; {note}; it/s compiled {its(per_step['compiled']):.2f}, "
                         f"eager {its(per_step['eager']):.2f}"))
    emit(ratio_row(f"per step on the compiled UNet, {label}: ours vs diffusers", per_step["compiled"],
                   per_step["diffusers"], "ms/step", 1000, note))


def run_child(part: str, arch: Arch, plan: Plan) -> None:
    import torch

    {"speed": speed, "memory": memory, "compile": compile_part}[part](arch, plan)
    if torch.cuda.is_available():
        print(f"peak VRAM of this {part} child: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB",
              file=sys.stderr)


# --- the parent: plan, deadline, results -------------------------------------------------------------------------

def parse_rows(stdout: str) -> list[Row]:
    rows = []
    for line in stdout.splitlines():
        if line.startswith(ROW_PREFIX):
            values = json.loads(line[len(ROW_PREFIX):])
            values["spread"] = tuple(values["spread"]) if values.get("spread") else None
            rows.append(Row(**values))
    return rows


def run_part(command: list[str], timeout: float) -> tuple[int | None, str, str]:
    """(exit code, or None when stopped at `timeout`; stdout; stderr) of one child. The child leads its own
    process group, and a stopped one is ended with all it started (inductor's compile workers included), so
    nothing keeps a GPU or the CPUs busy after the deadline."""
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, out, err


def child_command(part: str, arch: str, args: argparse.Namespace) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", part, "--archs", arch,
               "--steps", str(args.steps), "--short", str(args.short), "--repeats", str(args.repeats),
               "--memory-steps", str(args.memory_steps)]
    if args.size:
        command += ["--size", str(args.size)]
    return command


def write_out(out: Path, rows: list[Row], machine, command: str, seconds: float) -> None:
    from bench.run import header

    document = results_document(rows, machine, command, False, seconds)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(document, indent=1) + "\n")
    (out / "results.md").write_text(f"{header(document)}\n\n{format_table(rows)}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu")
    parser.add_argument("--archs", default="sd15,sdxl", help="comma-separated: " + ",".join(ARCHS))
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated: " + ",".join(PARTS))
    parser.add_argument("--size", type=int, default=0, help="image side (default: each architecture's own)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--short", type=int, default=4, help="steps of the short job of each slope")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-steps", type=int, default=4, help="steps of each memory child's job")
    parser.add_argument("--deadline", type=float, default=540.0, help="seconds for the whole run")
    parser.add_argument("--allow-cpu", action="store_true", help="run without CUDA (a check, no figures)")
    parser.add_argument("--child", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [a for a in archs if a not in ARCHS] + [p for p in parts if p not in PARTS]
    if bad or args.short >= args.steps:
        parser.error(f"unknown: {', '.join(bad)}" if bad else "--short must be below --steps")
    if args.child:
        arch = ARCHS[archs[0]]
        run_child(args.child, arch, Plan(args.size or arch.size, args.steps, args.short, args.repeats,
                                         args.memory_steps))
        return 0
    if device_name() != "cuda" and not args.allow_cpu:
        print("bench_gpu: no CUDA device here (use --allow-cpu for a check that the script runs)", file=sys.stderr)
        return 2

    machine = machine_info()
    import torch

    machine.extra["threads"] = torch.get_num_threads()
    command = "python bench/bench_gpu.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    start = time.perf_counter()
    log = (args.out / "bench_gpu.log")
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    # Cheap and most wanted first; compile (minutes of inductor) last.
    order = [(p, a) for p in ("speed", "memory") if p in parts for a in archs]
    order += [("compile", a) for a in archs if "compile" in parts]
    for part, arch in order:
        left = args.deadline - (time.perf_counter() - start)
        name = f"{part}, {arch}"
        if left < 20:
            rows.append(Row(name, None, None, "", error="skipped: the run's --deadline was reached"))
            continue
        print(f"[bench_gpu] {name} (at most {left:.0f} s) ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        try:
            code, out_text, err = run_part(child_command(part, arch, args), left)
            got = parse_rows(out_text)
            if code is None:
                got.append(Row(name, None, None, "", error="stopped at the run's --deadline"))
            elif code != 0:
                tail = " ".join(err.strip().splitlines()[-1:])[-300:] if err.strip() else ""
                got.append(Row(name, None, None, "", error=f"child exited with {code}: {tail}"))
        except Exception as exc:  # noqa: BLE001 - one failing part must not stop the others
            got, err = [error_row(name, exc)], ""
        with log.open("a") as handle:
            handle.write(f"=== {name}: {time.perf_counter() - began:.0f} s\n{err}\n")
        rows += got
        print(format_table(got), file=sys.stderr, flush=True)
        write_out(args.out, rows, machine, command, time.perf_counter() - start)
    machine = replace(machine, load_end=os.getloadavg())
    write_out(args.out, rows, machine, command, time.perf_counter() - start)
    print((args.out / "results.md").read_text())
    return 1 if rows and all(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
