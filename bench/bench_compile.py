"""Per-step time of the performance options (issue 17): channels-last, bfloat16, ToMe 0.5, torch.compile,
each against the same model in float32 eager, in one process.

Every option runs on its own copy of the model (built from the same seed), all through our txt2img
(generate_txt2img with a job context), in alternating (ABBA) order so machine load hits every kind alike.
Per-step time is the slope between a short and a long run, which leaves out the fixed cost (prompt
encoding, VAE decode). Rows:
- "channels-last vs float32": the UNet in NHWC (same numbers within float rounding);
- "bfloat16 vs float32": the whole pipeline in bfloat16 (the CPU default stays float32);
- "ToMe 0.5 vs ToMe 0": token_merging_ratio 0.5 on the float32 model (changes the image);
- "torch.compile vs eager" (not in --quick: inductor's C++ build of the UNet takes minutes on a busy
  2-core box): per-step ratio after warm-up, plus "first job", "second job, same size" and "third job,
  another size" in seconds (the compile cost and whether a new size compiles again).

    venv/bin/python bench/bench_compile.py [--model demo|tiny] [--size 128] [--steps 12] [--repeats 3]
        [--no-compile | --compile-only]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

from bench._common import Row, alternate_slopes, format_table, guarded, ratio_row
from bench.bench_txt2img import NEGATIVE, PROMPT, build_model


class Overlay:
    """Settings for one job: these values over the defaults (what the service's per-job overlay gives)."""

    def __init__(self, **values):
        from modules.settings import DEFAULT_SPECS

        self.values = {**{s.key: s.default for s in DEFAULT_SPECS}, **values}

    def get(self, key):
        return self.values[key]


def run(model, steps: int, size: int, settings: dict | None = None, cfg: float = 7.0) -> float:
    """Seconds for one 1-image txt2img job, to the image on the host."""
    from modules.generation.runtime import GenerationEnv
    from modules.generation.txt2img import generate_txt2img
    from modules.jobs.progress import JobContext
    from modules.types import GenerationRequest

    request = GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, steps=steps, width=size, height=size,
                                sampler_name="Euler", cfg_scale=cfg, seed=1234)
    start = time.perf_counter()
    with torch.no_grad():
        result = generate_txt2img(model, request, progress=JobContext("bench"),
                                  env=GenerationEnv(settings=Overlay(**(settings or {}))))
    assert len(result.images) == 1
    return time.perf_counter() - start


def variant(kind: str, name: str):
    """A fresh model of `kind` with option `name` applied as the memory policy would."""
    from modules.performance.compile import compile_unet

    model = build_model(kind)
    pipe = model.pipe
    if name == "channels_last":
        pipe.unet.to(memory_format=torch.channels_last)
    elif name == "bf16":
        pipe.to(dtype=torch.bfloat16)
    elif name == "compiled":
        compile_unet(pipe.unet, "default")
    return model


def per_step(kind: str, size: int, short: int, long: int, repeats: int, names: list[str]) -> dict:
    """{name: per-step seconds of each repeat}; "tome" runs on the float32 model with ratio 0.5."""
    models = {name: variant(kind, name) for name in names if name != "tome"}
    runners = {name: (lambda n, m=models.get(name, models.get("fp32")), name=name:
                      run(m, n, size, {"token_merging_ratio": 0.5} if name == "tome" else None))
               for name in names}
    return alternate_slopes(runners, short, long, repeats)


def option_rows(kind: str, size: int, short: int, long: int, repeats: int) -> list[Row]:
    slopes = per_step(kind, size, short, long, repeats, ["fp32", "channels_last", "bf16", "tome"])
    note = f"{size}x{size}, Euler, {long} vs {short} steps, {repeats} repeats, {torch.get_num_threads()} threads"
    labels = {"channels_last": "channels-last vs float32", "bf16": "bfloat16 vs float32",
              "tome": "ToMe 0.5 vs ToMe 0"}
    return [ratio_row(f"{label} per step, {kind}", slopes[name], slopes["fp32"], "ms/step", 1000, note)
            for name, label in labels.items()]


def compile_rows(kind: str, size: int, short: int, long: int, repeats: int) -> list[Row]:
    """Compile cost (first / second / other-size job) and the per-step ratio compiled vs eager."""
    if shutil.which("g++") is None and shutil.which("c++") is None:
        return [Row("torch.compile vs eager", None, None, "ms/step",
                    note="no C++ compiler: torch.compile falls back to eager (one warning), nothing to measure")]
    eager, compiled = variant(kind, "fp32"), variant(kind, "compiled")
    base = run(eager, short, size)
    first = run(compiled, short, size)
    second = run(compiled, short, size)
    other = run(compiled, short, size + 64)
    eager_other = run(eager, short, size + 64)
    from modules.performance.compile import is_compiled

    if not is_compiled(compiled.pipe.unet):
        return [Row("torch.compile vs eager", None, None, "s", error="compile failed; ran eagerly (see log)")]
    cost = [Row(f"torch.compile first job vs eager, {kind}", first, base, "s", first / base,
                note=f"{size}x{size}, {short} steps: includes the compile"),
            Row(f"torch.compile second job, same size, {kind}", second, base, "s", second / base),
            Row(f"torch.compile third job, {size + 64}x{size + 64}, {kind}", other, eager_other, "s",
                other / eager_other, note="dynamic=True: a new size should not cost another full compile")]
    models = {"eager": eager, "compiled": compiled}
    slopes = alternate_slopes({name: (lambda n, m=model: run(m, n, size)) for name, model in models.items()},
                              short, long, repeats, warm_up=False)  # the cost runs above warmed both
    return cost + [ratio_row(f"torch.compile vs eager per step, {kind}", slopes["compiled"], slopes["eager"],
                             "ms/step", 1000, f"{size}x{size}, {long} vs {short} steps, {repeats} repeats")]


def measure(quick: bool) -> list[Row]:
    """--quick: the tiny fixture at 64x64 without compile (bfloat16 is ~10x slower on CPUs without bf16 units,
    so the demo model would take minutes); otherwise the demo model at 128x128 with compile."""
    kind, size, short, long, repeats = ("tiny", 64, 2, 6, 2) if quick else ("demo", 128, 2, 12, 3)
    rows = guarded(f"performance options per step, {kind}",
                   lambda: option_rows(kind, size, short, long, repeats))
    if quick:
        rows.append(Row("torch.compile vs eager", None, None, "ms/step",
                        note="not in --quick (the CPU build takes minutes): bench/bench_compile.py"))
    else:
        rows += guarded(f"torch.compile vs eager, {kind}", lambda: compile_rows(kind, size, short, long, repeats))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["demo", "tiny", "sd15"], default="demo")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=12, help="steps of the long run (the short run has 2)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile rows")
    parser.add_argument("--compile-only", action="store_true", help="only the torch.compile rows")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    long = max(3, args.steps)
    rows = [] if args.compile_only else option_rows(args.model, args.size, 2, long, args.repeats)
    if not args.no_compile:
        rows += guarded("torch.compile vs eager", lambda: compile_rows(args.model, args.size, 2, long, args.repeats))
    print(f"load average {os.getloadavg()}, {torch.get_num_threads()} torch threads")
    print(format_table(rows))


if __name__ == "__main__":
    main()
