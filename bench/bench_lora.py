"""LoRA cost, ours vs plain diffusers, on a real-size SD1.5-shaped model with a rank-16 LoRA (random weights).

Rows (medians of --repeats alternating runs, min..max in brackets):
- cold: a file never seen: ours = read + resolve + inject + activate + deactivate + clear (the provider's
  real path); diffusers = load_lora_weights + set_adapters + unload_lora_weights on the same file.
- weight change: the adapter already loaded, a new weight for one batch and off again: ours = activate +
  deactivate; diffusers = enable_lora + set_adapters + disable_lora.
- per UNet step (batch 2 as with CFG, --latent px latents): no LoRA (plain modules), ours with the adapter
  loaded but off (between batches), ours active, diffusers active.

--kind loha / lokr: a LyCORIS file (attention linears, resnet convs, text encoder) instead. diffusers does not
load those, so the other side is PEFT's own LoHa/LoKr layers on the same modules (they rebuild dW at every
call), and the step rows add ours fused.

    venv/bin/python bench/bench_lora.py [--repeats 3] [--step-repeats 3] [--latent 32] [--threads 0]
                                        [--kind lora|loha|lokr] [--rank 16]
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

import torch  # noqa: E402


def build_pipe():
    """SD1.5's UNet and text encoder at full size from the bundled configs (random init), a tiny VAE."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from modules.paths import CONFIGS_DIR
    from tests.fixtures.tiny_models import load_scheduler, tiny_vae

    torch.manual_seed(0)
    config = CONFIGS_DIR / "sd15"
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config / "unet")).eval()
    text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(config / "text_encoder")).eval()
    pipe = StableDiffusionPipeline(unet=unet, vae=tiny_vae().eval(), text_encoder=text_encoder,
                                   tokenizer=CLIPTokenizer.from_pretrained(CONFIGS_DIR / "tokenizers" / "clip"),
                                   scheduler=load_scheduler("sd15"), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def provider_for(folder: Path):
    from modules.extensions.loader import import_extension_package

    package = import_extension_package("lora", ROOT / "extensions" / "lora")
    files, network = (sys.modules[f"{package.__name__}.{m}"] for m in ("files", "network"))
    values = {"extra_networks_default_multiplier": 1.0, "lora_cache_size": 4, "lora_fuse": False,
              "lora_preferred_name": "Alias from file", "lora_add_hashes_to_infotext": True}
    return network.LoraNetwork(files.LoraLibrary((folder,)), network.Settings(values.__getitem__))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def lora_layers(module) -> int:
    return sum(1 for m in module.modules() if hasattr(m, "lora_A") and len(m.lora_A))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--step-repeats", type=int, default=3, help="UNet steps of each kind")
    parser.add_argument("--latent", type=int, default=32, help="latent width/height of the UNet step (32 = 256 px)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    parser.add_argument("--kind", choices=("lora", "loha", "lokr"), default="lora")
    parser.add_argument("--rank", type=int, default=16)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from modules.extensions.hooks import GenerationInfo
    from modules.prompts.extra_networks import parse_prompt
    from tests.fixtures.loras import kohya_lora, write_lora

    pipe = build_pipe()
    folder = Path(tempfile.mkdtemp(prefix="bench-lora-"))
    if args.kind != "lora":
        lycoris_main(args, pipe, folder)
        return
    path = write_lora(folder / "bench.safetensors", kohya_lora(pipe, rank=args.rank, alpha=args.rank / 2,
                                                              strength=0.02))
    size_mb = path.stat().st_size / 2**20

    def calls(weight: float):
        return parse_prompt(f"<lora:bench:{weight}>")[1]["lora"]

    def ours_cold() -> None:
        provider = provider_for(folder)
        with provider.activate(pipe, calls(0.8), GenerationInfo(None)):
            pass
        provider.cache_for(pipe).clear()

    def plain_cold() -> None:
        pipe.load_lora_weights(str(path), adapter_name="bench")
        pipe.set_adapters(["bench"], [0.8])
        pipe.unload_lora_weights()

    # what each side really loaded (diffusers may skip layers it cannot name)
    provider = provider_for(folder)
    with provider.activate(pipe, calls(1.0), GenerationInfo(None)):
        ours_layers = (lora_layers(pipe.unet), lora_layers(pipe.text_encoder))
    provider.cache_for(pipe).clear()
    pipe.load_lora_weights(str(path), adapter_name="bench")
    plain_layers = (lora_layers(pipe.unet), lora_layers(pipe.text_encoder))
    pipe.unload_lora_weights()

    results: dict[str, list[float]] = {k: [] for k in ("cold ours", "cold diffusers", "weight ours",
                                                        "weight diffusers")}
    for i in range(args.repeats):  # ABBA: neither side always runs right after the other's cleanup
        pair = (("cold ours", ours_cold), ("cold diffusers", plain_cold))
        for key, fn in (pair if i % 2 == 0 else pair[::-1]):
            results[key].append(timed(fn))

    # weight changes: both adapters loaded side by side (different names), each switched on in turn
    provider = provider_for(folder)
    with provider.activate(pipe, calls(1.0), GenerationInfo(None)):
        pass
    pipe.load_lora_weights(str(path), adapter_name="plain")
    pipe.disable_lora()
    weights = [0.3, 0.9, 0.5, 0.7, 0.2, 0.6] * args.repeats

    def ours_weight(w: float) -> None:
        with provider.activate(pipe, calls(w), GenerationInfo(None)):
            pass

    def plain_weight(w: float) -> None:
        pipe.enable_lora()
        pipe.set_adapters(["plain"], [w])
        pipe.disable_lora()

    for w in weights:
        results["weight ours"].append(timed(lambda: ours_weight(w)))
        results["weight diffusers"].append(timed(lambda: plain_weight(w)))

    # per UNet step
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn((2, 4, args.latent, args.latent), generator=gen)
    context = torch.randn((2, 77, 768), generator=gen)

    def step() -> None:
        with torch.no_grad():
            pipe.unet(latents, 500, encoder_hidden_states=context)

    def ours_active() -> float:
        with provider.activate(pipe, calls(0.8), GenerationInfo(None)):
            return timed(step)

    def plain_active() -> float:
        pipe.enable_lora()
        pipe.set_adapters(["plain"], [0.8])
        try:
            return timed(step)
        finally:
            pipe.disable_lora()

    steps: dict[str, list[float]] = {k: [] for k in ("loaded, off", "ours active", "diffusers active")}
    step()  # warm-up
    for i in range(args.step_repeats):
        runs = [("loaded, off", lambda: timed(step)), ("ours active", ours_active),
                ("diffusers active", plain_active)]
        for key, fn in (runs if i % 2 == 0 else runs[::-1]):
            steps[key].append(fn())
    pipe.unload_lora_weights()
    provider.cache_for(pipe).clear()
    plain_steps = [timed(step) for _ in range(args.step_repeats)]  # no PEFT layers at all
    steps = {"no LoRA": plain_steps, **steps}

    print(f"SD1.5-shaped UNet + text encoder (random), rank-{args.rank} kohya LoRA {size_mb:.1f} MB; layers loaded "
          f"(unet, te): ours {ours_layers}, diffusers {plain_layers}; {args.repeats} repeats "
          f"({args.step_repeats} per step kind), "
          f"{torch.get_num_threads()} threads")
    for key in ("cold", "weight"):
        ours, plain = results[f"{key} ours"], results[f"{key} diffusers"]
        label = "load+apply+unload" if key == "cold" else "weight change"
        print(f"  {label:18s} ours {show(ours)}   diffusers {show(plain)}   "
              f"ratio {statistics.median(ours) / statistics.median(plain):.3f}")
    base = statistics.median(steps["no LoRA"])
    print(f"  UNet step, batch 2, {args.latent}x{args.latent} latents:")
    for name, values in steps.items():
        print(f"    {name:17s} {show(values)}   x{statistics.median(values) / base:.3f} of no LoRA")
    print(f"  active ratio ours/diffusers: "
          f"{statistics.median(steps['ours active']) / statistics.median(steps['diffusers active']):.3f}")


def show(values: list[float], unit: float = 1000) -> str:
    return f"{statistics.median(values) * unit:9.1f} ms [{min(values) * unit:.1f}..{max(values) * unit:.1f}]"


def lycoris_main(args, pipe, folder: Path) -> None:
    """Cold load, weight change and per-step rows for a LoHa/LoKr file: ours vs PEFT's LoHa/LoKr layers."""
    from peft import LoHaConfig, LoKrConfig, inject_adapter_in_model
    from peft.tuners.tuners_utils import BaseTunerLayer

    from modules.extensions.hooks import GenerationInfo
    from modules.prompts.extra_networks import parse_prompt
    from tests.fixtures.loras import conv_targets, lycoris_lora, unet_targets, write_lora

    state = lycoris_lora(pipe, args.kind, rank=args.rank, alpha=args.rank / 2, te=True, strength=0.02)
    path = write_lora(folder / "bench.safetensors", state)
    size_mb = path.stat().st_size / 2**20
    calls = parse_prompt("<lora:bench:0.8>")[1]["lora"]

    def ours_cold() -> None:
        provider = provider_for(folder)
        with provider.activate(pipe, calls, GenerationInfo(None)):
            pass
        provider.cache_for(pipe).clear()

    cold = [timed(ours_cold) for _ in range(args.repeats)]
    provider = provider_for(folder)
    with provider.activate(pipe, calls, GenerationInfo(None)):
        layers = lora_layers(pipe.unet), lora_layers(pipe.text_encoder)
    cache = provider.cache_for(pipe)
    ranks = sorted({r for m in pipe.unet.modules() if hasattr(m, "lora_A") for r in getattr(m, "r", {}).values()})

    def weight(w: float) -> None:
        with provider.activate(pipe, parse_prompt(f"<lora:bench:{w}>")[1]["lora"], GenerationInfo(None)):
            pass

    weights = [timed(lambda w=w: weight(w)) for w in [0.3, 0.9, 0.5, 0.7, 0.2, 0.6] * args.repeats]
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn((2, 4, args.latent, args.latent), generator=gen)
    context = torch.randn((2, 77, 768), generator=gen)

    def step() -> float:
        with torch.no_grad():
            return timed(lambda: pipe.unet(latents, 500, encoder_hidden_states=context))

    use = sys.modules[type(cache).__module__].Use(next(iter(cache.adapters.values())), 0.8, 0.8)

    def ours(fuse: bool) -> float:
        cache.activate([use], fuse=fuse)
        try:
            return step()
        finally:
            cache.deactivate()

    steps: dict[str, list[float]] = {k: [] for k in ("loaded, off", "ours active", "ours fused")}
    step()  # warm-up
    for i in range(args.step_repeats):
        runs = [("loaded, off", step), ("ours active", lambda: ours(False)), ("ours fused", lambda: ours(True))]
        for key, fn in (runs if i % 2 == 0 else runs[::-1]):
            steps[key].append(fn())
    cache.clear()
    steps = {"no LoRA": [step() for _ in range(args.step_repeats)], **steps}
    # PEFT's own layers on the same UNet modules (random weights: only the cost is measured)
    targets = unet_targets(pipe.unet) + conv_targets(pipe.unet)
    config = (LoHaConfig(r=args.rank, alpha=args.rank / 2, target_modules=targets, init_weights=False)
              if args.kind == "loha" else
              LoKrConfig(r=args.rank, alpha=args.rank / 2, target_modules=targets, init_weights=False))
    inject_adapter_in_model(config, pipe.unet, adapter_name="peft")
    steps["PEFT layers active"] = [step() for _ in range(args.step_repeats)]
    for name, module in list(pipe.unet.named_modules()):
        if isinstance(module, BaseTunerLayer):
            parent, _, attr = name.rpartition(".")
            setattr(pipe.unet.get_submodule(parent) if parent else pipe.unet, attr, module.get_base_layer())

    print(f"SD1.5-shaped UNet + text encoder (random), rank-{args.rank} {args.kind} {size_mb:.1f} MB; layers "
          f"(unet, te) {layers}, LoRA ranks used {ranks[:3]}..{ranks[-3:]}; {args.repeats} repeats, "
          f"{torch.get_num_threads()} threads")
    print(f"  load+apply+unload  ours {show(cold)}")
    print(f"  weight change      ours {show(weights)}")
    base = statistics.median(steps["no LoRA"])
    print(f"  UNet step, batch 2, {args.latent}x{args.latent} latents:")
    for name, values in steps.items():
        print(f"    {name:19s} {show(values)}   x{statistics.median(values) / base:.3f} of no LoRA")


if __name__ == "__main__":
    main()
