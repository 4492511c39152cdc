"""A tiny random SD1.5-layout checkpoint so the UI works with no model and no network.

The weights come from one seeded torch.Generator filled in sorted parameter order, so the file is
byte-identical on every machine with the same torch; its architecture is configs/demo-tiny. Images
are colourful noise, not pictures: the demo proves the whole path (UI, API, samplers, saving) works.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import torch

from modules.paths import CONFIGS_DIR

log = logging.getLogger(__name__)

DEMO_FILENAME = "demo-tiny-sd15.safetensors"
DEMO_CONFIG_DIR = CONFIGS_DIR / "demo-tiny"
DEMO_SEED = 1111
# written into the file's safetensors metadata: how is_demo_checkpoint knows the file, even renamed
DEMO_MARKER = ("webui_demo", "demo-tiny-sd15")


def _fill_(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Deterministic init: biases 0, norm scales 1, embeddings N(0, 0.02), other weights N(0, 1/fan_in)."""
    with torch.no_grad():
        for name, param in sorted(module.named_parameters()):
            if name.endswith("bias"):
                param.zero_()
            elif param.ndim == 1:
                param.fill_(1.0)
            elif "embedding" in name and param.ndim == 2 and "linear" not in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
            else:
                fan_in = math.prod(param.shape[1:])
                param.copy_(torch.randn(param.shape, generator=generator) / math.sqrt(fan_in))


def build_demo_pipeline(seed: int = DEMO_SEED):
    """The demo StableDiffusionPipeline (float32, CPU) from configs/demo-tiny and a seeded generator."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    generator = torch.Generator().manual_seed(seed)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(DEMO_CONFIG_DIR / "unet"))
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(DEMO_CONFIG_DIR / "vae"))
    text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(DEMO_CONFIG_DIR / "text_encoder"))
    for model in (unet, vae, text_encoder):  # fixed order: the generator's stream defines the weights
        _fill_(model, generator)
    pipe = StableDiffusionPipeline(
        unet=unet.eval(), vae=vae.eval(), text_encoder=text_encoder.eval(),
        tokenizer=CLIPTokenizer.from_pretrained(CONFIGS_DIR / "tokenizers" / "clip"),
        scheduler=PNDMScheduler.from_pretrained(DEMO_CONFIG_DIR / "scheduler"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    return pipe


def ensure_demo_checkpoint(ckpt_dir: Path | str) -> Path:
    """Path of `demo-tiny-sd15.safetensors` in ckpt_dir, writing it first if missing (~1 s, 7 MB)."""
    from safetensors.torch import save_file

    from modules.pipelines.ldm_layout import export_ldm_state_dict

    path = Path(ckpt_dir) / DEMO_FILENAME
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    state_dict = export_ldm_state_dict(build_demo_pipeline())
    # write then rename: a crash or a second process never leaves a half-written checkpoint behind
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # one metadata key only: safetensors writes several in a per-process random order, changing the bytes
    save_file(state_dict, str(tmp), metadata={DEMO_MARKER[0]: DEMO_MARKER[1]})
    os.replace(tmp, path)
    log.info("Wrote the demo checkpoint %s (tiny random weights, for trying the UI without a model)", path)
    return path


def is_demo_checkpoint(path: Path | str) -> bool:
    """True for a file written by ensure_demo_checkpoint (reads only the safetensors header)."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors" or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            if not 0 < header_len < 100_000_000:
                return False
            header = json.loads(f.read(header_len))
    except (OSError, ValueError):
        return False
    return (header.get("__metadata__") or {}).get(DEMO_MARKER[0]) == DEMO_MARKER[1]
