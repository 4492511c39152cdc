"""LoRA rows for bench/run.py, built on bench_lora's pipeline and provider helpers (bench_lora.py keeps the
detailed CLI, LyCORIS kinds and per-step rows): ours (the LoRA extension's provider) vs plain diffusers/PEFT
on the same kohya file, runs alternating.

- cold: a file never seen, load + apply + unapply + clear vs load_lora_weights + set_adapters + unload;
- apply with a new weight, the adapter already loaded: provider.activate enter vs enable_lora + set_adapters;
- unapply: the activate context's exit vs disable_lora.

The full run uses SD1.5's real UNet and text encoder (random); --quick the tiny SD1.5 pipeline.

    venv/bin/python bench/bench_lora_rows.py [--quick]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import bench_lora as lora  # noqa: E402  (sets the offline environment first)
from bench._common import Row, alternate, format_table, ratio_row, timed  # noqa: E402

WEIGHTS = (0.3, 0.9, 0.5, 0.7, 0.2, 0.6)


def measure_lora(pipe, label: str, rank: int, repeats: int) -> list[Row]:
    from modules.extensions.hooks import GenerationInfo
    from modules.prompts.extra_networks import parse_prompt
    from tests.fixtures.loras import kohya_lora, write_lora

    folder = Path(tempfile.mkdtemp(prefix="bench-lora-rows-"))
    path = write_lora(folder / "bench.safetensors", kohya_lora(pipe, rank=rank, alpha=rank / 2, strength=0.02))
    note = f"{label}, rank-{rank} kohya LoRA ({path.stat().st_size / 2**20:.1f} MB), {repeats} repeats"

    def calls(weight: float):
        return parse_prompt(f"<lora:bench:{weight}>")[1]["lora"]

    def ours_cold() -> float:
        def run():
            provider = lora.provider_for(folder)
            with provider.activate(pipe, calls(0.8), GenerationInfo(None)):
                pass
            provider.cache_for(pipe).clear()

        return timed(run)

    def plain_cold() -> float:
        def run():
            pipe.load_lora_weights(str(path), adapter_name="bench")
            pipe.set_adapters(["bench"], [0.8])
            pipe.unload_lora_weights()

        return timed(run)

    cold = alternate({"ours": ours_cold, "diffusers": plain_cold}, repeats)

    # Both loaded side by side (different adapter names); each applied and taken off in turn.
    provider = lora.provider_for(folder)
    with provider.activate(pipe, calls(1.0), GenerationInfo(None)):
        pass
    pipe.load_lora_weights(str(path), adapter_name="plain")
    pipe.disable_lora()
    samples: dict[str, list[float]] = {"apply ours": [], "apply diffusers": [], "off ours": [], "off diffusers": []}
    for i, weight in enumerate(WEIGHTS[i % len(WEIGHTS)] for i in range(2 * repeats)):
        def ours(w=weight) -> None:
            held = {}

            def apply() -> None:  # activate() applies the weights itself, before the context is entered
                held["cm"] = provider.activate(pipe, calls(w), GenerationInfo(None))
                held["cm"].__enter__()

            samples["apply ours"].append(timed(apply))
            samples["off ours"].append(timed(lambda: held["cm"].__exit__(None, None, None)))

        def plain(w=weight) -> None:
            samples["apply diffusers"].append(timed(lambda: (pipe.enable_lora(),
                                                             pipe.set_adapters(["plain"], [w]))))
            samples["off diffusers"].append(timed(pipe.disable_lora))

        for fn in ((ours, plain) if i % 2 == 0 else (plain, ours)):
            fn()
    pipe.unload_lora_weights()
    provider.cache_for(pipe).clear()
    return [ratio_row("LoRA cold: load + apply + unapply", cold["ours"], cold["diffusers"], "ms", 1000, note),
            ratio_row("LoRA apply with a new weight (loaded)", samples["apply ours"], samples["apply diffusers"],
                      "ms", 1000, note + "; diffusers: enable_lora + set_adapters"),
            ratio_row("LoRA unapply", samples["off ours"], samples["off diffusers"], "ms", 1000,
                      note + "; diffusers: disable_lora")]


def measure(quick: bool) -> list[Row]:
    if quick:
        from tests.fixtures.tiny_models import build_tiny_sd15_pipeline

        pipe = build_tiny_sd15_pipeline()
        pipe.set_progress_bar_config(disable=True)
        return measure_lora(pipe, "tiny SD1.5 pipeline", 4, 4)
    return measure_lora(lora.build_pipe(), "SD1.5 UNet + text encoder (random)", 16, 6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(format_table(measure(args.quick)))


if __name__ == "__main__":
    main()
