"""Load Stable Diffusion checkpoints offline: A1111 single files (.safetensors/.ckpt) and diffusers folders.

A single file is matched to one of our bundled config folders (configs/<architecture>/) by its keys,
unless the user put an override next to it: `<stem>.config/` (a diffusers config folder) or an A1111
`<stem>.yaml`. diffusers then builds the pipeline from the file with that local config, never the hub.
"""
from __future__ import annotations

import logging
import pickle
import re
import tempfile
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from modules.paths import CONFIGS_DIR

log = logging.getLogger(__name__)

ARCHITECTURES = ("sd15", "sd15-inpaint", "sd2", "sd2-v", "sd2-inpaint", "sdxl-base", "sdxl-refiner",
                 "sdxl-inpaint")
SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
TOKENIZERS_DIR = CONFIGS_DIR / "tokenizers"

# diffusers' own guess (infer_diffusers_model_type) for real-size files -> our architecture names
_DIFFUSERS_TYPES = {"v1": "sd15", "inpainting": "sd15-inpaint", "v2": "sd2-v", "inpainting_v2": "sd2-inpaint",
                    "xl_base": "sdxl-base", "xl_refiner": "sdxl-refiner", "xl_inpaint": "sdxl-inpaint"}
_UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"


def _load_errors() -> tuple[type[BaseException], ...]:
    """What diffusers raises for files that do not fit their config (imported late: diffusers is slow)."""
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    return (OSError, ValueError, RuntimeError, KeyError, SingleFileComponentError)


class CheckpointError(Exception):
    """A checkpoint we cannot read or do not support; the message names the file and is shown verbatim."""


@dataclass(frozen=True)
class LoadedModelInfo:
    """How a pipeline was loaded: from what, with which config, as which architecture; times in seconds."""

    path: Path
    architecture: str  # one of ARCHITECTURES
    pipeline_class: str
    task: str  # what the returned pipeline does: "txt2img", "inpaint" or "img2img"
    file_format: str  # "safetensors", "ckpt" or "diffusers"
    config_dir: Path
    config_source: str  # "argument", "<stem>.config", "<stem>.yaml", "demo", "bundled" or "diffusers folder"
    prediction_type: str  # "epsilon" or "v_prediction"
    dtype: str
    load_s: float


# ---- reading files ------------------------------------------------------------------------------

def _unreadable(path: Path, why: object) -> CheckpointError:
    return CheckpointError(f"{path.name}: not a readable checkpoint ({why})")


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """All tensors of a .safetensors or .ckpt/.pt file (safe unpickling only; "state_dict" unwrapped)."""
    import torch

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise _unreadable(path, exc) from None
    if suffix not in PICKLE_SUFFIXES:
        raise CheckpointError(f"{path.name}: unsupported file type {suffix or '(none)'}; "
                              "use .safetensors, .ckpt or .pt")
    try:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):  # legacy (non-zip) pickles cannot be memory-mapped
                raise
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found:  # a real pickle with code references in it: never execute those
            why = f"it pickles {found.group(1)}, not just tensors; refusing to unpickle it"
        else:
            detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
            why = f"invalid pickle data: {detail.group(1).strip()}" if detail else type(exc).__name__
        raise _unreadable(path, why) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise _unreadable(path, str(exc).split(". ")[0]) from None
    while isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise _unreadable(path, f"top level is {type(data).__name__}, not a dict of tensors")
    return {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}


def read_key_shapes(path: Path | str) -> dict[str, torch.Tensor]:
    """Keys with meta tensors of the right shape: enough to detect an architecture without loading weights."""
    import torch

    path = Path(path)
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        return {k: v.to("meta") for k, v in read_state_dict(path).items()}
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: torch.empty(f.get_slice(k).get_shape(), device="meta") for k in f.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None


# ---- what is it ---------------------------------------------------------------------------------

def detect_architecture(state_dict: Mapping[str, Any], name: str = "checkpoint") -> str:
    """One of ARCHITECTURES from a state dict's keys and shapes (values need only `.shape`)."""
    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in state_dict)

    unet_in = state_dict.get(_UNET_IN)
    if unet_in is None or len(unet_in.shape) != 4:
        raise CheckpointError(f"{name}: unknown architecture ({_guess_other(state_dict)})")
    in_channels = unet_in.shape[1]
    if has("conditioner.embedders.1.model."):
        family = "sdxl"
    elif has("conditioner.embedders.0.model."):
        family = "sdxl-refiner"
    elif has("cond_stage_model.model."):
        family = "sd2"
    elif has("cond_stage_model.transformer."):
        family = "sd15"
    else:
        raise CheckpointError(f"{name}: unknown architecture (a UNet without a CLIP text encoder we know)")
    if in_channels not in (4, 9) or (family == "sdxl-refiner" and in_channels != 4):
        raise CheckpointError(f"{name}: unsupported {family} variant with {in_channels} UNet input channels "
                              "(only txt2img (4) and inpainting (9) models load)")
    if family == "sdxl-refiner":
        return family
    if in_channels == 9:
        return f"{family}-inpaint"
    return {"sdxl": "sdxl-base", "sd2": "sd2-v"}.get(family, family)


def _guess_other(state_dict: Mapping[str, Any]) -> str:
    """Name what diffusers recognises when it is not a Stable Diffusion 1/2/XL checkpoint."""
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    try:
        guess = infer_diffusers_model_type(state_dict)
    except Exception:  # noqa: BLE001 - its probes index shapes of keys it expects; anything odd means "no idea"
        guess = "v1"
    if guess in _DIFFUSERS_TYPES:  # its fallback answer when nothing matched
        return "no Stable Diffusion UNet keys such as " + _UNET_IN
    return f"looks like {guess!r}; only SD1.x, SD2.x and SDXL checkpoints are supported"


def bundled_config_dir(architecture: str) -> Path:
    """The bundled diffusers config folder (no weights) for one of ARCHITECTURES."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {', '.join(ARCHITECTURES)}")
    return CONFIGS_DIR / architecture


def architecture_from_yaml(yaml_path: Path) -> str:
    """Map an A1111/LDM inference .yaml to one of ARCHITECTURES by its key facts."""
    import yaml

    try:
        doc = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
        params = doc["model"].get("params") or {}
    except (OSError, yaml.YAMLError, KeyError, AttributeError, TypeError) as exc:
        why = type(exc).__name__
        raise CheckpointError(f"{yaml_path.name}: not a readable model config ({why})") from None
    net = (params.get("network_config") or params.get("unet_config") or {}).get("params") or {}
    context_dim, in_channels = net.get("context_dim"), int(net.get("in_channels", 4))
    is_v = params.get("parameterization") == "v"
    if context_dim == 768:
        arch = "sd15"
    elif context_dim == 1024:
        arch = "sd2-v" if is_v else "sd2"
    elif context_dim == 2048:
        arch = "sdxl-base"
    elif context_dim == 1280:
        arch = "sdxl-refiner"
    else:
        raise CheckpointError(f"{yaml_path.name}: unsupported model config (context_dim {context_dim})")
    inpaint = {"sd15": "sd15-inpaint", "sd2": "sd2-inpaint", "sd2-v": "sd2-inpaint",
               "sdxl-base": "sdxl-inpaint"}
    if in_channels == 9 and arch in inpaint:
        arch = inpaint[arch]
    elif in_channels != 4:
        raise CheckpointError(f"{yaml_path.name}: unsupported model config "
                              f"({in_channels} UNet input channels)")
    return arch


def find_config_override(path: Path | str) -> Path | None:
    """The config folder a user put next to a checkpoint: `<stem>.config/` wins over `<stem>.yaml`."""
    path = Path(path)
    folder = path.with_name(path.stem + ".config")
    if (folder / "model_index.json").is_file():
        return folder
    yaml_path = path.with_suffix(".yaml")
    if yaml_path.is_file():
        return bundled_config_dir(architecture_from_yaml(yaml_path))
    return None


# architectures that share text encoders and weight layout (they differ in UNet input or prediction)
_FAMILIES = {"sd15": "sd1", "sd15-inpaint": "sd1", "sd2": "sd2", "sd2-v": "sd2", "sd2-inpaint": "sd2",
             "sdxl-base": "sdxl", "sdxl-inpaint": "sdxl", "sdxl-refiner": "sdxl-refiner"}


def _family(arch: str) -> str:
    return _FAMILIES[arch]


def _scheduler_prediction(config_dir: Path) -> str:
    import json

    try:
        sched = json.loads((config_dir / "scheduler" / "scheduler_config.json").read_text())
        return sched.get("prediction_type", "epsilon")
    except (OSError, ValueError):
        return "epsilon"


# ---- building pipelines -----------------------------------------------------------------------------

_PIPELINES = {  # architecture -> (diffusers pipeline class name, task)
    "sd15": ("StableDiffusionPipeline", "txt2img"), "sd2": ("StableDiffusionPipeline", "txt2img"),
    "sd2-v": ("StableDiffusionPipeline", "txt2img"),
    "sd15-inpaint": ("StableDiffusionInpaintPipeline", "inpaint"),
    "sd2-inpaint": ("StableDiffusionInpaintPipeline", "inpaint"),
    "sdxl-base": ("StableDiffusionXLPipeline", "txt2img"),
    "sdxl-inpaint": ("StableDiffusionXLInpaintPipeline", "inpaint"),
    "sdxl-refiner": ("StableDiffusionXLImg2ImgPipeline", "img2img"),
}


def _tokenizers(arch: str, config_dir: Path) -> dict[str, Any]:
    """Our shipped tokenizers for each tokenizer the config folder does not carry itself."""
    from transformers import CLIPTokenizer

    wanted = {"sdxl-refiner": {"tokenizer_2": "clip-pad-excl"},
              "sdxl": {"tokenizer": "clip", "tokenizer_2": "clip-pad-excl"},
              "sd2": {"tokenizer": "clip-pad-excl"}}.get(_family(arch), {"tokenizer": "clip"})
    return {name: CLIPTokenizer.from_pretrained(TOKENIZERS_DIR / folder) for name, folder in wanted.items()
            if not (config_dir / name).is_dir()}


def _sd1_extras(cls_name: str) -> dict[str, Any]:
    # SD1/SD2 pipelines would otherwise want a safety checker we neither ship nor run
    if cls_name.startswith("StableDiffusionXL"):
        return {}
    return {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}


def load_pipeline(path: Path | str, *, config_dir: Path | str | None = None,
                  dtype: torch.dtype | None = None) -> tuple[Any, LoadedModelInfo]:
    """Load a single-file checkpoint or diffusers folder offline; returns (pipeline on CPU, info).
    `dtype` defaults to float32."""
    import diffusers
    import torch

    dtype = torch.float32 if dtype is None else dtype
    start = time.perf_counter()
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path.name}: file not found ({path})")
    # 1. what is it, and which config describes it
    if path.is_dir():
        arch, file_format = _folder_architecture(path), "diffusers"
        config, source = path, "diffusers folder"
    else:
        file_format = "safetensors" if path.suffix.lower() in SAFETENSORS_SUFFIXES else "ckpt"
        arch = detect_architecture(read_key_shapes(path), path.name)
        config, source = _choose_config(path, arch, config_dir)
        if source == "<stem>.yaml":  # the yaml names the variant (e.g. v-prediction) the keys cannot show
            arch = config.name
    prediction = _scheduler_prediction(config)
    if arch in ("sd2", "sd2-v"):
        arch = "sd2-v" if prediction == "v_prediction" else "sd2"
    cls_name, task = _PIPELINES[arch]
    cls = getattr(diffusers, cls_name)
    # 2. build it from local files only
    extras = _tokenizers(arch, config) | _sd1_extras(cls_name)
    try:
        if file_format == "diffusers":
            pipe = cls.from_pretrained(path, local_files_only=True, dtype=dtype, **extras)
        else:
            pipe = cls.from_single_file(str(path), config=str(config), local_files_only=True, dtype=dtype,
                                        **extras)
    except _load_errors() as exc:
        msg = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path.name}: could not be loaded as {arch} "
                              f"with config {config.name} ({msg})") from None
    # 3. SD2 files without an explicit config: probe the UNet, v-prediction or epsilon
    if source == "bundled" and arch == "sd2-v" and not _predicts_v(pipe.unet):
        arch, prediction = "sd2", "epsilon"
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, prediction_type="epsilon")
    pipe._webui_task = task  # the manager derives img2img/inpaint pipelines from this one
    info = LoadedModelInfo(path=path, architecture=arch, pipeline_class=cls_name, task=task,
                           file_format=file_format, config_dir=config, config_source=source,
                           prediction_type=prediction, dtype=str(dtype).removeprefix("torch."),
                           load_s=round(time.perf_counter() - start, 3))
    log.info("Loaded %s as %s from %s config %s in %.1f s", path.name, arch, source, config, info.load_s)
    return pipe, info


def _choose_config(path: Path, arch: str, config_dir: Path | str | None) -> tuple[Path, str]:
    if config_dir is not None:
        folder = Path(config_dir)
        if not (folder / "model_index.json").is_file():
            raise CheckpointError(f"{path.name}: config folder {folder} has no model_index.json")
        return folder, "argument"
    override = find_config_override(path)
    if override is not None:
        source = "<stem>.config" if override.parent == path.parent else "<stem>.yaml"
        if source == "<stem>.yaml" and _family(override.name) != _family(arch):
            raise CheckpointError(f"{path.with_suffix('.yaml').name} describes {override.name}, "
                                  f"but {path.name} is {arch}")
        return override, source
    from modules.pipelines.demo import demo_config_dir

    demo_dir = demo_config_dir(path)
    if demo_dir is not None:
        return demo_dir, "demo"
    return bundled_config_dir(arch), "bundled"


def _folder_architecture(folder: Path) -> str:
    """Architecture of a diffusers folder from its model_index.json and UNet config."""
    import json

    try:
        index = json.loads((folder / "model_index.json").read_text())
        unet = json.loads((folder / "unet" / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder.name}: not a diffusers model folder ({type(exc).__name__})") from None
    inpaint = unet.get("in_channels", 4) == 9
    if index.get("text_encoder_2", [None])[0] is not None:
        if index.get("text_encoder", [None])[0] is None:
            return "sdxl-refiner"
        return "sdxl-inpaint" if inpaint else "sdxl-base"
    if unet.get("cross_attention_dim") == 1024 or unet.get("use_linear_projection"):
        return "sd2-inpaint" if inpaint else "sd2"
    return "sd15-inpaint" if inpaint else "sd15"


def _predicts_v(unet) -> bool:
    """True when the UNet answers pure noise at t=999 like a v-model (not echoing the noise back)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    param = next(unet.parameters())
    x = torch.randn(1, unet.config.in_channels, 8, 8, generator=gen).to(param.device, param.dtype)
    context = torch.zeros(1, 77, unet.config.cross_attention_dim, device=param.device, dtype=param.dtype)
    with torch.no_grad():
        out = unet(x, torch.tensor([999], device=param.device), encoder_hidden_states=context).sample
    return prediction_from_probe(x, out) == "v_prediction"


def prediction_from_probe(noise: torch.Tensor, output: torch.Tensor) -> str:
    """An epsilon model echoes near-pure noise back (cosine ~1); a v-model's output barely correlates."""
    import torch

    cos = torch.nn.functional.cosine_similarity(noise.flatten().float(), output.flatten().float(), dim=0)
    return "epsilon" if cos.item() > 0.5 else "v_prediction"


# ---- VAEs ------------------------------------------------------------------------------------

def find_auto_vae(ckpt_path: Path | str, vae_dir: Path | str | None = None) -> Path | None:
    """A1111 "Automatic": `<stem>.vae.safetensors|.pt|.ckpt` next to the checkpoint, then in vae_dir."""
    ckpt_path = Path(ckpt_path)
    folders = [ckpt_path.parent] + ([Path(vae_dir)] if vae_dir else [])
    for folder in folders:
        for suffix in (".vae.safetensors", ".vae.pt", ".vae.ckpt"):
            candidate = folder / f"{ckpt_path.stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def load_vae(path: Path | str, like) -> Any:
    """An AutoencoderKL from a VAE file (LDM or diffusers keys), shaped, typed and placed like `like.vae`."""
    from diffusers import AutoencoderKL

    path = Path(path)
    state_dict = read_state_dict(path)
    target = like.vae
    param = next(target.parameters())
    try:
        if any(k.startswith(("encoder.down_blocks.", "decoder.up_blocks.")) for k in state_dict):
            vae = AutoencoderKL.from_config(target.config)  # already diffusers names
            vae.load_state_dict(state_dict, strict=True)
        else:
            with tempfile.TemporaryDirectory() as tmp:  # from_single_file wants a config folder on disk
                target.save_config(tmp)
                vae = AutoencoderKL.from_single_file(state_dict, config=tmp, local_files_only=True)
    except _load_errors() as exc:
        why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path.name}: not a VAE for this model ({why})") from None
    if any(p.is_meta for p in vae.parameters()):
        raise CheckpointError(f"{path.name}: not a VAE for this model (weights missing)")
    return vae.to(device=param.device, dtype=param.dtype).eval()
