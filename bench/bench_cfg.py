"""Per-step time without the unconditional pass: CFG 1 vs CFG 7, and NGMS / Skip Early CFG vs plain CFG 7.

All runs go through our txt2img (generate_txt2img with a job context) on one model in one process, in
alternating (ABBA) order so machine load hits every kind alike. Per-step time is the median interval between
step ends inside a run (bench/_step_clock.py), which leaves out the fixed cost (prompt encoding, VAE decode);
for Skip Early CFG, whose steps differ on purpose, the mean interval. Issue 17's goal: CFG 1's
per-step time <= 0.6x CFG 7's. Rows:
- "CFG 1 vs CFG 7": the UNet runs on 1 row per image instead of 2;
- "NGMS all steps vs CFG 7": s_min_uncond above every sigma with s_min_uncond_all, i.e. every step skipped
  (the most NGMS can save; plain NGMS skips every other step below its sigma, about half of that);
- "Skip Early CFG 0.5 vs CFG 7": the first half of the steps skipped (the mean over the run: what it saves
  on average);
- "diffusers CFG 1 vs CFG 7": plain diffusers on the same pipeline (guidance_scale 1 also drops its
  unconditional pass): what this machine allows. On a small model a batch of 2 costs less than twice a batch
  of 1, so neither side halves.

    venv/bin/python bench/bench_cfg.py [--model demo|tiny] [--size 256] [--steps 12] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

from bench._common import Row, alternate, format_table, guarded, ratio_row
from bench._step_clock import StepClock, step_seconds
from bench.bench_txt2img import NEGATIVE, PROMPT, build_model, run_plain

GOAL = 0.6  # issue 17: CFG 1 per-step time <= 0.6x CFG 7


class Overlay:
    """Settings for one job: these values over the defaults (what the service's per-job overlay gives)."""

    def __init__(self, **values):
        from modules.settings import DEFAULT_SPECS

        self.values = {**{s.key: s.default for s in DEFAULT_SPECS}, **values}

    def get(self, key):
        return self.values[key]


# kind -> (cfg scale, settings)
KINDS: dict[str, tuple[float, dict]] = {
    "cfg7": (7.0, {}),
    "cfg1": (1.0, {}),
    "ngms_all": (7.0, {"s_min_uncond": 1000.0, "s_min_uncond_all": True}),
    "skip_early": (7.0, {"skip_early_cond": 0.5}),
}


def run(model, kind: str, steps: int, size: int) -> float:
    """Seconds per step of one txt2img job of `kind` (median step interval; mean for Skip Early CFG)."""
    from modules.generation.runtime import GenerationEnv
    from modules.generation.txt2img import generate_txt2img
    from modules.types import GenerationRequest

    cfg, settings = KINDS[kind]
    request = GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, steps=steps, width=size, height=size,
                                sampler_name="Euler", cfg_scale=cfg, seed=1234)
    env = GenerationEnv(settings=Overlay(**settings))
    clock = StepClock()
    result = generate_txt2img(model, request, progress=clock, env=env)
    assert len(result.images) == 1 and len(clock.ends) == steps, len(clock.ends)
    return step_seconds(clock.ends, "mean" if kind == "skip_early" else "median")


def measure_model(kind: str, size: int, steps: int, repeats: int) -> list[Row]:
    """Per-step rows of every skip kind against CFG 7 on one model."""
    with torch.no_grad():
        model = build_model(kind)
    for name in KINDS:  # warm-up: first calls pay for kernel selection and lazy imports
        run(model, name, 2, size)
    runs = {name: (lambda n=name: run(model, n, steps, size)) for name in KINDS}
    runs.update({f"diffusers_cfg{c:g}": (lambda c=c: run_plain(model, steps, size, c)[1]) for c in (1.0, 7.0)})
    for c in (1.0, 7.0):
        run_plain(model, 2, size, c)
    per_step = alternate(runs, repeats)
    note = f"{size}x{size}, Euler, {steps} steps, {repeats} repeats; goal <= {GOAL}"
    labels = {"cfg1": "CFG 1", "ngms_all": "NGMS all steps", "skip_early": "Skip Early CFG 0.5"}
    rows = [ratio_row(f"{label} vs CFG 7 per step, {kind}", per_step[name], per_step["cfg7"], "ms/step", 1000,
                      note if name == "cfg1" else note.split(";")[0])
            for name, label in labels.items()]
    rows.append(ratio_row(f"diffusers CFG 1 vs CFG 7 per step, {kind}", per_step["diffusers_cfg1"],
                          per_step["diffusers_cfg7"], "ms/step", 1000,
                          note.split(";")[0] + "; plain diffusers, the same pipeline: this machine's floor"))
    return rows


def measure(quick: bool) -> list[Row]:
    """The tiny SD1.5 fixture and the demo model (small sizes with --quick); SD 1.5 at 128x128 in full runs."""
    plan = [("tiny", 64, 10, 3 if quick else 5),
            ("demo", 64 if quick else 256, 10 if quick else 12, 3)]
    if not quick:  # the real SD 1.5 architecture: the UNet, not fixed per-step work, is what CFG 1 halves
        plan.append(("sd15", 128, 6, 2))
    rows: list[Row] = []
    for kind, size, steps, repeats in plan:
        rows += guarded(f"CFG 1 vs CFG 7 per step, {kind}",
                        lambda k=kind, s=size, n=steps, r=repeats: measure_model(k, s, n, r))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["demo", "tiny", "sd15"], default="demo")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=12, help="sampling steps per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = measure_model(args.model, args.size, max(2, args.steps), args.repeats)
    print(f"load average {os.getloadavg()}, {torch.get_num_threads()} torch threads")
    print(format_table(rows))


if __name__ == "__main__":
    main()
