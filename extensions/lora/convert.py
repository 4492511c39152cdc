"""LoRA files as low-rank pairs per real module: kohya/A1111 (`lora_unet_*`, `lora_te*_`, LDM or diffusers
block names), diffusers/PEFT (`unet.<module>.lora_A.weight`) and LyCORIS LoCon/LoHa/LoKr/full diff (kohya
names; see lycoris.py), matched against the loaded model's modules.

Every key is resolved against the module names the model really has (an index built once per model), so a
LoRA for another architecture is recognised before any tensor is copied, instead of a shape error from
deep inside a load. A pair keeps the file's tensors as they are (no copy) with its scale alpha / rank beside
them: the PEFT layer's scaling is that scale times the tag's multiplier.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from . import lycoris

COMPONENTS = ("unet", "text_encoder", "text_encoder_2")
KOHYA_PREFIXES = {"lora_unet_": "unet", "lora_te_": "text_encoder", "lora_te1_": "text_encoder",
                  "lora_te2_": "text_encoder_2"}
# LyCORIS kinds this engine does not apply: named in the warning. A bias delta (`diff_b`, `bias_indices`)
# has no place in a LoRA pair; DoRA rescales the merged weight's columns, which no added branch can do.
UNSUPPORTED_KINDS = {"oft_blocks": "OFT", "oft_diag": "OFT", "w_norm": "GLoRA",  # BOFT writes oft_blocks too
                     "a1.weight": "GLoRA", "dora_scale": "DoRA", "diff_b": "full diff with bias",
                     "on_input": "IA3", "bias_indices": "LoRA with bias"}
ARCH_BY_CONTEXT = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL"}


class LoraFormatError(ValueError):
    """The file is not a LoRA this engine can apply (the message says why, short)."""


@dataclass
class LowRank:
    """One module's pair: out = base(x) + mult * scale * up(down(x)) (scale: the file's alpha / rank)."""

    down: torch.Tensor
    up: torch.Tensor
    scale: float = 1.0

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])


@dataclass
class LoraWeights:
    """A file resolved against one model: component -> module name -> pair."""

    layers: dict[str, dict[str, LowRank]] = field(default_factory=dict)
    arch: str | None = None  # what the keys say it was trained for, None when they do not tell

    def components(self) -> list[str]:
        return [c for c in COMPONENTS if self.layers.get(c)]


def model_arch(pipe) -> str:
    """The loaded model's family as the warning names it."""
    if getattr(pipe, "text_encoder_2", None) is not None:
        return "SDXL"
    context = getattr(getattr(getattr(pipe, "unet", None), "config", None), "cross_attention_dim", None)
    return "SD 2.x" if context == 1024 else "SDXL" if context == 2048 else "SD 1.x"


def lora_arch(state_dict: dict[str, torch.Tensor]) -> str | None:
    """SDXL when the file has two text encoders, else by the UNet's cross-attention width (768/1024/2048)."""
    if any(k.startswith(("lora_te1_", "lora_te2_", "text_encoder_2.")) for k in state_dict):
        return "SDXL"
    for key, tensor in state_dict.items():
        if "attn2" in key and ("to_k" in key) and any(m in key for m in ("lora_down", "lora_A", "lora.down",
                                                                       "hada_w1_b")):
            if tensor.dim() == 2 or "lora" in key:  # a LoHa Tucker factor has no input width there
                return ARCH_BY_CONTEXT.get(int(tensor.shape[1]))
    return None


def unsupported_kind(state_dict: dict[str, torch.Tensor]) -> str | None:
    for key in state_dict:
        tail = key.split(".", 1)[-1]
        for marker, kind in UNSUPPORTED_KINDS.items():
            if tail == marker or tail.startswith(marker + ".") or tail.endswith("." + marker):
                return kind
    return None


# -- module index ------------------------------------------------------------------------------------

def module_index(component: str, module: torch.nn.Module) -> dict[str, str]:
    """Every spelling a file may use for a Linear/Conv2d of `module` -> its real name. kohya flattens dots to
    underscores; SD UNet files may use LDM block names; transformers 5 CLIP has no `text_model.` level."""
    import torch

    index: dict[str, str] = {}
    ldm = _ldm_prefixes(module.config) if component == "unet" and hasattr(module, "config") else {}
    for name, child in module.named_modules():
        if not isinstance(child, (torch.nn.Linear, torch.nn.Conv2d)) or not name:
            continue
        name = _base_name(name)
        spellings = {name}
        if component != "unet":
            spellings.add(name.removeprefix("text_model.") if name.startswith("text_model.") else "text_model." + name)
        else:
            ldm_name = _to_ldm(name, ldm)
            if ldm_name:
                spellings.add(ldm_name)
        for spelling in spellings:
            index[spelling] = name
            index[spelling.replace(".", "_")] = name
    return index


def _base_name(name: str) -> str:
    # A module PEFT already wrapped is named ".base_layer" inside: the file names the wrapper.
    return name.removesuffix(".base_layer")


def _ldm_prefixes(config) -> dict[str, str]:
    """diffusers block prefix -> LDM block prefix, from the UNet's layout (SD 1.x/2.x/SDXL alike)."""
    per = int(config.layers_per_block) if isinstance(config.layers_per_block, int) else int(config.layers_per_block[0])
    out: dict[str, str] = {"conv_in": "input_blocks.0.0", "conv_out": "out.2",
                           "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
                           "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
                           "mid_block.resnets.0": "middle_block.0", "mid_block.attentions.0": "middle_block.1",
                           "mid_block.resnets.1": "middle_block.2"}
    downs = list(config.down_block_types)
    for b, kind in enumerate(downs):
        for j in range(per):
            idx = 1 + b * (per + 1) + j
            out[f"down_blocks.{b}.resnets.{j}"] = f"input_blocks.{idx}.0"
            if "CrossAttn" in kind:
                out[f"down_blocks.{b}.attentions.{j}"] = f"input_blocks.{idx}.1"
        if b < len(downs) - 1:
            out[f"down_blocks.{b}.downsamplers.0.conv"] = f"input_blocks.{1 + b * (per + 1) + per}.0.op"
    for b, kind in enumerate(config.up_block_types):
        for j in range(per + 1):
            idx = b * (per + 1) + j
            out[f"up_blocks.{b}.resnets.{j}"] = f"output_blocks.{idx}.0"
            if "CrossAttn" in kind:
                out[f"up_blocks.{b}.attentions.{j}"] = f"output_blocks.{idx}.1"
        if b < len(config.up_block_types) - 1:
            idx = b * (per + 1) + per
            out[f"up_blocks.{b}.upsamplers.0.conv"] = f"output_blocks.{idx}.{2 if 'CrossAttn' in kind else 1}.conv"
    return out


_RESNET_INNER = {"conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "conv2": "out_layers.3",
                 "conv_shortcut": "skip_connection"}


def _to_ldm(name: str, prefixes: dict[str, str]) -> str | None:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        head = ".".join(parts[:cut])
        if head in prefixes:
            rest = parts[cut:]
            if ".resnets." in f".{head}." and len(rest) == 1:
                rest = [_RESNET_INNER.get(rest[0], rest[0])]
            return ".".join([prefixes[head], *rest]) if rest else prefixes[head]
    return None


# -- state dict -> pairs -------------------------------------------------------------------------------

_PEFT_PAIR = re.compile(r"^(?P<module>.+?)\.(?:lora_A|lora\.down|lora_linear_layer\.down|lora_down)\.weight$")


def resolve(state_dict: dict[str, torch.Tensor], indexes: dict[str, dict[str, str]],
            modules: dict[str, torch.nn.Module]) -> LoraWeights:
    """Pairs per component module from a kohya or diffusers/PEFT state dict; raises LoraFormatError when keys
    do not fit the model (unknown modules, other shapes) or the file has no pairs at all."""
    import torch

    kind = unsupported_kind(state_dict)
    if kind:
        raise LoraFormatError(f"is a LyCORIS {kind} file, which this engine does not apply")
    weights = LoraWeights(arch=lora_arch(state_dict))
    unknown: list[str] = []
    for key, down in state_dict.items():
        if _lycoris(key, state_dict, indexes, modules, weights, unknown):
            continue
        found = _pair_key(key)
        if found is None:
            continue
        component, spelled, up_key, alpha_key = found
        if component not in indexes:
            unknown.append(key)
            continue
        name = indexes[component].get(spelled)
        if name is None or up_key not in state_dict:
            unknown.append(key)
            continue
        up = state_dict[up_key]
        rank = int(down.shape[0])
        alpha = float(state_dict[alpha_key].item()) if alpha_key in state_dict else float(rank)
        target = modules[component].get_submodule(name)
        target = getattr(target, "base_layer", target)
        mid = state_dict.get(up_key.replace("lora_up", "lora_mid"))
        if mid is not None and "lora_up" in up_key:
            # LoCon's CP core (1x1 down, kxk mid): folded into one kxk down, still rank r
            down = torch.einsum("ijhw,jn->inhw", mid.float(), down.float().flatten(1)).to(down.dtype)
        down, up = _fit(down, up, target, key)
        weights.layers.setdefault(component, {})[name] = LowRank(down, up, alpha / rank)
    if unknown:
        total = len(unknown) + sum(len(v) for v in weights.layers.values())
        raise LoraFormatError(f"{len(unknown)} of {total} layers are not in the loaded model "
                              f"(first: {unknown[0].rsplit('.', 2)[0]})")
    if not weights.layers:
        raise LoraFormatError("has no LoRA layers (lora_down/lora_up or lora_A/lora_B pairs)")
    return weights


def _lycoris(key: str, state_dict: dict[str, torch.Tensor], indexes: dict[str, dict[str, str]],
             modules: dict[str, torch.nn.Module], weights: LoraWeights, unknown: list[str]) -> bool:
    """Resolve `key` if it marks a LoHa/LoKr/full-diff module (True: handled, also when unknown)."""
    import torch

    found = lycoris.kind_and_stem(key)
    if found is None:
        return False
    kind, stem = found
    place = _kohya_stem(stem)
    name = indexes.get(place[0], {}).get(place[1]) if place else None
    if name is None:
        unknown.append(key)
        return True
    target = modules[place[0]].get_submodule(name)
    target = getattr(target, "base_layer", target)
    try:
        down, up = lycoris.factors(kind, stem, state_dict, target.weight.shape)
    except ValueError as exc:
        shape = tuple(target.weight.shape)
        raise LoraFormatError(f"layer {stem} ({kind}): {exc}, the model's is {shape}") from None
    if isinstance(target, torch.nn.Conv2d):
        down = down.reshape(down.shape[0], *target.weight.shape[1:])
    dtype = target.weight.dtype  # built in float32; the layer's dtype now, so the engine copies nothing
    weights.layers.setdefault(place[0], {})[name] = LowRank(*_fit(down.to(dtype), up.to(dtype), target, key))
    return True


def _kohya_stem(stem: str) -> tuple[str, str] | None:
    for prefix, component in KOHYA_PREFIXES.items():
        if stem.startswith(prefix):
            return component, stem[len(prefix):]
    return None


def _pair_key(key: str) -> tuple[str, str, str, str] | None:
    """(component, module spelling, up key, alpha key) for a `down` key, None for any other key."""
    for prefix, component in KOHYA_PREFIXES.items():
        if key.startswith(prefix) and key.endswith(".lora_down.weight"):
            stem = key[: -len(".lora_down.weight")]
            return component, stem[len(prefix):], stem + ".lora_up.weight", stem + ".alpha"
    match = _PEFT_PAIR.match(key)
    if match is None:
        return None
    module = match.group("module")
    marker = key[len(module):]
    up_key = key[: len(module)] + marker.replace("lora_A", "lora_B").replace("down", "up")
    component, _, rest = module.partition(".")
    if component not in COMPONENTS:  # a bare UNet file (old diffusers attn-procs format)
        component, rest = "unet", module
    rest = _old_processor_name(rest, component)
    return component, rest, up_key, module + ".alpha"


def _old_processor_name(rest: str, component: str) -> str:
    """diffusers' old `attn1.processor.to_q_lora` / CLIP `self_attn.to_q_lora` spellings -> module names."""
    for suffix, real in (("to_q_lora", "to_q"), ("to_k_lora", "to_k"), ("to_v_lora", "to_v"), ("to_out_lora", "to_out.0")):
        if rest.endswith("." + suffix):
            base = rest[: -len(suffix) - 1].removesuffix(".processor")
            if component != "unet":
                real = {"to_q": "q_proj", "to_k": "k_proj", "to_v": "v_proj", "to_out.0": "out_proj"}[real]
            return f"{base}.{real}"
    return rest


def _fit(down: torch.Tensor, up: torch.Tensor, target: torch.nn.Module, key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The pair in the target's layout (kohya stores 1x1 convs as 4-D, some files Linear-as-conv); a shape that
    does not fit the module is a LoraFormatError, not a failure half-way through loading."""
    import torch

    if isinstance(target, torch.nn.Linear):
        if down.dim() == 4 and down.shape[2:] == (1, 1):
            down, up = down.flatten(1), up.flatten(1)
        ok = down.dim() == 2 and down.shape[1] == target.in_features and up.shape[0] == target.out_features
    else:
        if down.dim() == 2:
            down, up = down[:, :, None, None], up[:, :, None, None]
        if up.dim() == 2:
            up = up[:, :, None, None]
        ok = (down.dim() == 4 and down.shape[1] == target.in_channels and up.shape[0] == target.out_channels
              and up.shape[2:] == (1, 1) and tuple(down.shape[2:]) == tuple(target.kernel_size))
    if not ok or up.shape[1] != down.shape[0]:
        raise LoraFormatError(f"layer {key.rsplit('.', 2)[0]} has shape {tuple(down.shape)} -> {tuple(up.shape)}, "
                              f"the model's is {tuple(target.weight.shape)}")
    return down, up
