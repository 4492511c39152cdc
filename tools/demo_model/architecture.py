"""The demo model's shape: a tiny SD1.x-layout pipeline (AutoencoderKL, UNet2DConditionModel, CLIP text).

It is an ordinary StableDiffusionPipeline with small widths, so single-file loading, samplers, the prompt
encoder, LoRA and ControlNet treat it like a real SD 1.5 checkpoint. The config folder written next to the
checkpoint (`<stem>.config/`) is what the project's loader reads it with.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from modules.paths import CONFIGS_DIR

TOKENIZER_DIR = CONFIGS_DIR / "tokenizers" / "clip"
# SD 1.5's noise schedule (the demo-tiny scheduler config): every sampler in our table expects it
SCHEDULER_CONFIG = CONFIGS_DIR / "demo-tiny" / "scheduler" / "scheduler_config.json"


@dataclass(frozen=True)
class Sizes:
    """Widths and depths; the defaults are the shipped demo model's (about 11M parameters,
    half of them the CLIP token embeddings, zero outside the captions' words)."""

    vae_channels: tuple[int, ...] = (16, 32, 64, 64)  # four levels: factor 8, like SD (128 px -> 16x16)
    # one group: a GroupNorm of 2-channel groups turns a flat picture into +-1 per channel (the colour is
    # lost); the colour-path start (vae_init.py) needs its 7 carried channels in one group
    vae_groups: int = 1
    unet_channels: tuple[int, ...] = (48, 96, 96)
    unet_heads: int = 4  # diffusers' "attention_head_dim" is the head count in SD1 configs
    unet_groups: int = 16
    text_width: int = 128  # also the UNet's cross-attention width
    text_layers: int = 3
    text_heads: int = 4


def vae_config(sizes: Sizes, scaling_factor: float = 0.18215) -> dict:
    levels = len(sizes.vae_channels)
    return {
        "_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": list(sizes.vae_channels),
        "down_block_types": ["DownEncoderBlock2D"] * levels, "up_block_types": ["UpDecoderBlock2D"] * levels,
        "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1,
        "norm_num_groups": sizes.vae_groups, "sample_size": 128, "scaling_factor": scaling_factor,
        "force_upcast": True,
    }


def unet_config(sizes: Sizes) -> dict:
    # cross-attention at the two finer levels (16x16 and 8x8 latents at 128 px): where shapes and places are
    return {
        "_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": sizes.unet_heads,
        "block_out_channels": list(sizes.unet_channels), "center_input_sample": False,
        "cross_attention_dim": sizes.text_width,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4,
        "out_channels": 4, "layers_per_block": 1, "mid_block_scale_factor": 1, "norm_eps": 1e-5,
        "norm_num_groups": sizes.unet_groups, "sample_size": 16,
    }


def text_config(sizes: Sizes) -> dict:
    return {
        "architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "attention_dropout": 0.0,
        "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407, "hidden_act": "quick_gelu",
        "hidden_size": sizes.text_width, "intermediate_size": 4 * sizes.text_width,
        "initializer_factor": 1.0, "initializer_range": 0.02, "layer_norm_eps": 1e-5,
        "max_position_embeddings": 77, "num_attention_heads": sizes.text_heads,
        "num_hidden_layers": sizes.text_layers, "projection_dim": sizes.text_width, "vocab_size": 49408,
    }


MODEL_INDEX = {
    "_class_name": "StableDiffusionPipeline", "feature_extractor": [None, None],
    "image_encoder": [None, None],
    "requires_safety_checker": False, "safety_checker": [None, None],
    "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def build_vae(sizes: Sizes):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_config(vae_config(sizes))


def build_unet(sizes: Sizes):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_config(unet_config(sizes))


def build_text_encoder(sizes: Sizes, used_token_ids: set[int]):
    """CLIPTextModel whose token embeddings are zero except for the words the captions use.

    Rows that never get a gradient stay zero: unknown words add nothing (position embeddings only) instead
    of random directions, and the file holds ~6M zeros that git compresses to almost nothing.
    """
    from transformers import CLIPTextConfig, CLIPTextModel

    model = CLIPTextModel(CLIPTextConfig(**text_config(sizes)))
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        keep = torch.zeros(weight.shape[0], dtype=torch.bool)
        keep[sorted(used_token_ids)] = True
        weight[~keep] = 0.0
    return model


def tokenizer():
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(TOKENIZER_DIR)


def scheduler_config() -> dict:
    return json.loads(SCHEDULER_CONFIG.read_text())


def write_config_folder(folder: Path, sizes: Sizes, scaling_factor: float) -> Path:
    """The diffusers config folder (no weights, no tokenizer: the loader adds our shipped CLIP tokenizer)."""
    files = {"model_index.json": MODEL_INDEX, "vae/config.json": vae_config(sizes, scaling_factor),
             "unet/config.json": unet_config(sizes), "text_encoder/config.json": text_config(sizes),
             "scheduler/scheduler_config.json": scheduler_config()}
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return folder


def sizes_record(sizes: Sizes) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(sizes).items()}
