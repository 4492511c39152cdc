"""Model switch: time to make a checkpoint current through our PipelineManager, from disk (cold, RAM cache off)
against plain diffusers' `from_single_file` of the same file with the same bundled config, and from the RAM
cache (cached) against our own cold switch. Each switch goes from the other model to this one.

The full run switches to an SD 1.5-size single file (real key layout and shapes, constant weights: load time
does not depend on the values; built in the temp folder and deleted afterwards unless --keep-file); --quick
switches between the demo checkpoint and a tiny SD1.5 file. The cached switch (A1111's "Maximum number of
checkpoints loaded at the same time" = 2) goes A -> B -> A -> B, both models in RAM; on the CPU it only swaps
references (issue 17's goal: below 1 s for an SD 1.5-size file).

    venv/bin/python bench/bench_switch.py [--quick] [--keep-file]
"""
from __future__ import annotations

import argparse
import gc
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

import torch  # noqa: E402

from bench._common import Row, format_table, ratio_row, timed  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "webui-bench"


def full_size_sd15_file() -> Path:
    """An SD 1.5-size LDM single file (fp16, about 2 GB), written once into the temp folder."""
    return full_size_file("sd15")


def full_size_file(config_name: str) -> Path:
    """A full-size LDM single file of configs/<config_name> (sd15: about 2 GB, sdxl-base: about 6.9 GB; fp16,
    constant weights), written once into the temp folder."""
    from types import SimpleNamespace

    from safetensors.torch import save_file

    from modules.paths import CONFIGS_DIR
    from modules.pipelines.ldm_layout import export_ldm_state_dict
    from tests.fixtures.full_size import meta_pipeline_parts

    path = CACHE / f"{config_name}-full-constant.safetensors"
    if path.is_file():
        return path
    parts = meta_pipeline_parts(CONFIGS_DIR / config_name)
    modules = [m for m in (parts.unet, parts.vae, parts.text_encoder, parts.text_encoder_2) if m is not None]
    for module in modules:
        module.to_empty(device="cpu")
        with torch.no_grad():
            for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
                if not tensor.is_floating_point():  # position ids
                    tensor.copy_(torch.arange(tensor.shape[-1]).expand_as(tensor))
                else:
                    tensor.fill_(1.0 if "norm" in name and name.endswith("weight") else 0.01)
    state = export_ldm_state_dict(SimpleNamespace(unet=parts.unet, vae=parts.vae, text_encoder=parts.text_encoder,
                                                  text_encoder_2=parts.text_encoder_2), dtype=torch.float16)
    del parts, modules
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # atomic: another run may write it too
    save_file(state, str(tmp))
    os.replace(tmp, path)
    return path


def checkpoint(path: Path):
    from modules.pipelines.registry import CheckpointInfo

    return CheckpointInfo(path=path, name=path.name, model_name=path.stem)


def manager(cache_size: int):
    from modules.devices import DeviceFlags, DeviceInfo, choose_policy
    from modules.pipelines.manager import PipelineManager

    return PipelineManager(lambda family: choose_policy(DeviceInfo(), DeviceFlags(), family), cache_size=cache_size)


def measure_switch(target: Path, target_config: Path, other: Path, other_config: Path, repeats: int,
                   label: str) -> list[Row]:
    from diffusers import StableDiffusionPipeline

    from modules.pipelines.manager import free_memory

    size_mb = target.stat().st_size / 2**20
    note = f"{label} ({size_mb:.0f} MB file), {repeats} repeats"
    cold = manager(0)
    cold.load(checkpoint(other), other_config)

    def ours_cold() -> float:
        elapsed = timed(lambda: cold.load(checkpoint(target), target_config))
        cold.load(checkpoint(other), other_config)  # back, so the next switch is a switch again
        return elapsed

    def plain_cold() -> float:
        def load():
            pipe = StableDiffusionPipeline.from_single_file(str(target), config=str(target_config),
                                                            local_files_only=True, torch_dtype=torch.float32)
            del pipe

        elapsed = timed(load)
        gc.collect()
        return elapsed

    times: dict[str, list[float]] = {"ours": [], "diffusers": []}
    for i in range(repeats):
        order = [("ours", ours_cold), ("diffusers", plain_cold)]
        for key, fn in (order if i % 2 == 0 else order[::-1]):
            times[key].append(fn())
    cold.unload()
    free_memory()

    cached = manager(2)
    cached.load(checkpoint(target), target_config)
    cached.load(checkpoint(other), other_config)
    hits, back = [], []
    for _ in range(repeats):  # A -> B -> A -> B: every load is a switch, both directions timed
        hits.append(timed(lambda: cached.load(checkpoint(target), target_config)))
        back.append(timed(lambda: cached.load(checkpoint(other), other_config)))
    cached.unload()
    free_memory()
    return [ratio_row(f"model switch cold, {label}", times["ours"], times["diffusers"], "s", 1.0,
                      note + "; reference: diffusers from_single_file"),
            ratio_row(f"model switch cached, {label}", hits, times["ours"], "s", 1.0,
                      note + f"; reference: our cold switch; back to the other model: "
                             f"{statistics.median(back):.3f} s")]


def measure(quick: bool, keep_file: bool = False) -> list[Row]:
    from modules.paths import CONFIGS_DIR
    from modules.pipelines.demo import DEMO_CONFIG_DIR, ensure_demo_checkpoint
    from tests.fixtures.checkpoints import write_single_file

    with tempfile.TemporaryDirectory(prefix="bench-switch-") as tmp:
        demo = ensure_demo_checkpoint(Path(tmp) / "demo")
        if quick:
            tiny = write_single_file("sd15", Path(tmp) / "tiny")
            return measure_switch(tiny.path, tiny.config_dir, demo, DEMO_CONFIG_DIR, 2, "tiny SD1.5 file")
        big = full_size_sd15_file()
        try:
            return measure_switch(big, CONFIGS_DIR / "sd15", demo, DEMO_CONFIG_DIR, 3, "SD 1.5-size file")
        finally:
            if not keep_file:  # 2 GB in the temp folder: gone unless asked to keep it for the next run
                big.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small files instead of the SD 1.5-size one")
    parser.add_argument("--keep-file", action="store_true", help="keep the SD 1.5-size file for the next run")
    args = parser.parse_args()
    start = time.perf_counter()
    print(format_table(measure(args.quick, args.keep_file)))
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
