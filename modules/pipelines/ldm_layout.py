"""Export a diffusers pipeline as one LDM/A1111-layout state dict (the inverse of single-file loading).

Names are derived by rules from each model's config (block types, layers per block), so any UNet,
VAE or CLIP text tower of the Stable Diffusion family maps, from the tiny test models to SDXL.
Every source tensor must map to exactly one target key; anything left over raises, so a model
we do not understand can never be written out half-converted.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SD1_CLIP_PREFIX = "cond_stage_model.transformer.text_model."
SD2_OPENCLIP_PREFIX = "cond_stage_model.model."
SDXL_CLIP_PREFIX = "conditioner.embedders.0.transformer.text_model."
SDXL_OPENCLIP_PREFIX = "conditioner.embedders.1.model."
REFINER_OPENCLIP_PREFIX = "conditioner.embedders.0.model."

StateDict = dict[str, torch.Tensor]
TextLayout = Literal["clip", "open_clip"]

# diffusers ResnetBlock2D -> LDM ResBlock (UNet) sub-names
_UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
# diffusers ResnetBlock2D -> LDM VAE ResnetBlock sub-names
_VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
# diffusers Attention (VAE mid block) -> LDM AttnBlock sub-names
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _per_level(value: Any, levels: int) -> list[int]:
    return list(value) if isinstance(value, (list, tuple)) else [int(value)] * levels


def _apply(sd: StateDict, rules: list[tuple[str, str, dict[str, str]]], what: str) -> StateDict:
    """Rewrite every key by its longest matching (source prefix, target prefix, sub-name map) rule."""
    rules = sorted(rules, key=lambda r: len(r[0]), reverse=True)
    out: StateDict = {}
    for key, tensor in sd.items():
        for src, dst, subs in rules:
            if key.startswith(src):
                rest = key[len(src):]
                for a, b in subs.items():  # sub-names are whole dotted components at the start of `rest`
                    if rest.startswith(a + "."):
                        rest = b + rest[len(a):]
                        break
                out[dst + rest] = tensor
                break
        else:
            raise ValueError(f"{what}: no LDM name for parameter {key!r}")
    return out


def unet_to_ldm(unet) -> StateDict:
    """UNet2DConditionModel weights under LDM `openaimodel.UNetModel` names (no prefix)."""
    cfg = unet.config
    if cfg.get("class_embed_type") or cfg.get("addition_embed_type") not in (None, "text_time"):
        raise ValueError("UNet: only SD-style (optionally SDXL text_time) embeddings can be exported")
    down_types, up_types = cfg["down_block_types"], cfg["up_block_types"]
    down_layers = _per_level(cfg["layers_per_block"], len(down_types))
    up_layers = [n + 1 for n in reversed(down_layers)]  # each up level has one extra resnet for the skip
    rules: list[tuple[str, str, dict[str, str]]] = [
        ("time_embedding.linear_1.", "time_embed.0.", {}),
        ("time_embedding.linear_2.", "time_embed.2.", {}),
        ("add_embedding.linear_1.", "label_emb.0.0.", {}),
        ("add_embedding.linear_2.", "label_emb.0.2.", {}),
        ("conv_in.", "input_blocks.0.0.", {}),
        ("conv_norm_out.", "out.0.", {}),
        ("conv_out.", "out.2.", {}),
    ]
    # input_blocks: [conv_in] then per level its resnet(+attention) layers, then a downsampler if not last
    index = 1
    for level, (block_type, layers) in enumerate(zip(down_types, down_layers)):
        for j in range(layers):
            rules.append((f"down_blocks.{level}.resnets.{j}.", f"input_blocks.{index}.0.", _UNET_RESNET))
            if "CrossAttn" in block_type:
                rules.append((f"down_blocks.{level}.attentions.{j}.", f"input_blocks.{index}.1.", {}))
            index += 1
        if level < len(down_types) - 1:
            rules.append((f"down_blocks.{level}.downsamplers.0.conv.", f"input_blocks.{index}.0.op.", {}))
            index += 1
    # middle_block: resnet, attention, resnet in sequence
    mid_parts = ["resnets.0"] + (["attentions.0"] if "CrossAttn" in (cfg.get("mid_block_type") or
                                                                  "UNetMidBlock2DCrossAttn") else [])
    for n, part in enumerate(mid_parts + ["resnets.1"]):
        rules.append((f"mid_block.{part}.", f"middle_block.{n}.", _UNET_RESNET if "resnets" in part else {}))
    # output_blocks: per level resnet(+attention); the upsampler sits in the level's last output block
    index = 0
    for level, (block_type, layers) in enumerate(zip(up_types, up_layers)):
        has_attn = "CrossAttn" in block_type
        for j in range(layers):
            rules.append((f"up_blocks.{level}.resnets.{j}.", f"output_blocks.{index}.0.", _UNET_RESNET))
            if has_attn:
                rules.append((f"up_blocks.{level}.attentions.{j}.", f"output_blocks.{index}.1.", {}))
            index += 1
        if level < len(up_types) - 1:
            slot = 2 if has_attn else 1
            upsampler = f"output_blocks.{index - 1}.{slot}.conv."
            rules.append((f"up_blocks.{level}.upsamplers.0.conv.", upsampler, {}))
    return _apply(unet.state_dict(), rules, "UNet")


def vae_to_ldm(vae) -> StateDict:
    """AutoencoderKL weights under LDM `first_stage_model` names (no prefix); attention as 1x1 convs."""
    cfg = vae.config
    levels = len(cfg["block_out_channels"])
    layers = int(cfg["layers_per_block"])
    rules: list[tuple[str, str, dict[str, str]]] = [("quant_conv.", "quant_conv.", {}),
                                                    ("post_quant_conv.", "post_quant_conv.", {})]
    for part, ldm_levels in (("encoder", list(range(levels))), ("decoder", list(reversed(range(levels))))):
        rules += [(f"{part}.conv_in.", f"{part}.conv_in.", {}),
                  (f"{part}.conv_out.", f"{part}.conv_out.", {}),
                  (f"{part}.conv_norm_out.", f"{part}.norm_out.", {}),
                  (f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1.", _VAE_RESNET),
                  (f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2.", _VAE_RESNET),
                  (f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1.", _VAE_ATTN)]
        # the decoder counts its levels from the bottom in LDM, from the top in diffusers
        kind, sampler = ("down", "downsample") if part == "encoder" else ("up", "upsample")
        for level, ldm_level in enumerate(ldm_levels):
            src, dst = f"{part}.{kind}_blocks.{level}.", f"{part}.{kind}.{ldm_level}."
            for j in range(layers + (part == "decoder")):
                rules.append((f"{src}resnets.{j}.", f"{dst}block.{j}.", _VAE_RESNET))
            rules.append((f"{src}{sampler}rs.0.conv.", f"{dst}{sampler}.conv.", {}))
    out = _apply(vae.state_dict(), rules, "VAE")
    # LDM's AttnBlock uses 1x1 convolutions where diffusers uses Linear layers
    for key, tensor in out.items():
        if re.search(r"\.mid\.attn_1\.(q|k|v|proj_out)\.weight$", key) and tensor.ndim == 2:
            out[key] = tensor[:, :, None, None]
    return out


def _hf_text_state(text_encoder) -> StateDict:
    """The text tower's weights with transformers 5's optional `text_model.` prefix removed."""
    return {k.removeprefix("text_model."): v for k, v in text_encoder.state_dict().items()
            if not k.endswith("position_ids")}


def clip_to_ldm(text_encoder) -> StateDict:
    """HF CLIPTextModel weights under OpenAI-CLIP/HF names as LDM stores them (prefix adds `text_model.`)."""
    sd = _hf_text_state(text_encoder)
    sd.pop("text_projection.weight", None)  # LDM's FrozenCLIPEmbedder has no projection
    return sd


def open_clip_to_ldm(text_encoder, with_projection: bool = False) -> StateDict:
    """HF CLIP text weights under OpenCLIP names: fused attention in_proj, `resblocks`, `ln_final`."""
    sd = _hf_text_state(text_encoder)
    out: StateDict = {"token_embedding.weight": sd.pop("embeddings.token_embedding.weight"),
                      "positional_embedding": sd.pop("embeddings.position_embedding.weight"),
                      "ln_final.weight": sd.pop("final_layer_norm.weight"),
                      "ln_final.bias": sd.pop("final_layer_norm.bias")}
    projection = sd.pop("text_projection.weight", None)
    if with_projection:
        if projection is None:
            raise ValueError("OpenCLIP export: text encoder has no text_projection")
        out["text_projection"] = projection.T.contiguous()  # OpenCLIP multiplies x @ P; Linear stores P.T
    renames = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
               "self_attn.out_proj": "attn.out_proj"}
    layers = sorted({int(k.split(".")[2]) for k in sd if k.startswith("encoder.layers.")})
    for i in layers:
        src, dst = f"encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            qkv = [sd.pop(f"{src}self_attn.{p}_proj.{kind}") for p in ("q", "k", "v")]
            out[f"{dst}attn.in_proj_{kind}"] = torch.cat(qkv, dim=0)
            for a, b in renames.items():
                out[f"{dst}{b}.{kind}"] = sd.pop(f"{src}{a}.{kind}")
    if sd:
        raise ValueError(f"OpenCLIP export: no LDM name for parameter {min(sd)!r}")
    return out


def _text_layout(text_encoder) -> TextLayout:
    # OpenCLIP towers (SD2, SDXL's second encoder) use exact GELU; OpenAI CLIP uses quick_gelu
    return "open_clip" if text_encoder.config.hidden_act == "gelu" else "clip"


def _prefixed(prefix: str, sd: StateDict) -> StateDict:
    return {prefix + k: v for k, v in sd.items()}


def export_ldm_state_dict(pipe, dtype: torch.dtype | None = None) -> StateDict:
    """The whole pipeline (UNet, VAE, text encoders) as one A1111 single-file state dict."""
    sd = _prefixed(UNET_PREFIX, unet_to_ldm(pipe.unet)) | _prefixed(VAE_PREFIX, vae_to_ldm(pipe.vae))
    te, te2 = getattr(pipe, "text_encoder", None), getattr(pipe, "text_encoder_2", None)
    if te2 is not None:  # SDXL: CLIP-L in embedders.0 (base only), OpenCLIP bigG with projection after it
        if te is not None:
            sd |= _prefixed(SDXL_CLIP_PREFIX, clip_to_ldm(te))
        prefix = SDXL_OPENCLIP_PREFIX if te is not None else REFINER_OPENCLIP_PREFIX
        sd |= _prefixed(prefix, open_clip_to_ldm(te2, with_projection=True))
    elif te is not None:
        if _text_layout(te) == "open_clip":
            sd |= _prefixed(SD2_OPENCLIP_PREFIX, open_clip_to_ldm(te))
        else:
            sd |= _prefixed(SD1_CLIP_PREFIX, clip_to_ldm(te))
    return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().contiguous()
            for k, v in sd.items()}


def save_ldm_checkpoint(pipe, path: Path | str, dtype: torch.dtype | None = None) -> Path:
    """Write the pipeline as an A1111 checkpoint: .safetensors, or .ckpt/.pt as {"state_dict": ...}."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = export_ldm_state_dict(pipe, dtype)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path), metadata={"format": "pt"})
    else:
        torch.save({"state_dict": sd}, path)
    return path
