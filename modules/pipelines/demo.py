"""The demo checkpoints that let the UI work with no model and no network.

- demo-shapes (the offline default when the repository ships it): a small SD1.5-layout model trained by
  tools/demo_model on coloured shapes; `configs/demo-shapes/` holds its weights and diffusers config, and
  the first start copies the file into the checkpoint folder. It draws what simple prompts say.
- demo-tiny (the fallback, and the tests' fast model): tiny random weights from one seeded
  torch.Generator filled in sorted parameter order, so the file is byte-identical on every machine with
  the same torch; its architecture is configs/demo-tiny. Images are colourful noise: it proves the whole
  path (UI, API, samplers, saving) works.

Both carry a `webui_demo` metadata key naming them, so a renamed copy is still known as a demo.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from modules.paths import CONFIGS_DIR

log = logging.getLogger(__name__)

DEMO_FILENAME = "demo-tiny-sd15.safetensors"
DEMO_CONFIG_DIR = CONFIGS_DIR / "demo-tiny"
DEMO_SEED = 1111
# written into the file's safetensors metadata: how is_demo_checkpoint knows the file, even renamed
DEMO_MARKER = ("webui_demo", "demo-tiny-sd15")

SHAPES_NAME = "demo-shapes"  # the marker value tools/demo_model/train.py writes
SHAPES_DIR = CONFIGS_DIR / "demo-shapes"  # its diffusers config folder, with the trained file inside
SHAPES_FILE = SHAPES_DIR / "demo-shapes.safetensors"
SHAPES_NATIVE_SIZE = 128  # trained at 128 px (and 64 px); the UI's default size when it is the model
SHAPES_EXAMPLES = (
    "a red circle, white background",
    "a large blue square on the left, yellow background",
    "a green triangle and a purple star, black background",
)


def _fill_(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Deterministic init: biases 0, norm scales 1, embeddings N(0, 0.02), other weights N(0, 1/fan_in)."""
    import torch

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
    import torch
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


def install_demo_checkpoint(ckpt_dir: Path | str) -> Path:
    """The offline first start's checkpoint in ckpt_dir: the trained demo-shapes file when the repository
    ships it (copied, ~23 MB), else the random demo-tiny one (written). An existing copy is kept."""
    if not SHAPES_FILE.is_file():
        return ensure_demo_checkpoint(ckpt_dir)
    import shutil

    path = Path(ckpt_dir) / SHAPES_FILE.name
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # a half-copied file never looks like a model
    shutil.copyfile(SHAPES_FILE, tmp)
    os.replace(tmp, path)
    log.info("Installed the demo checkpoint %s (a small model trained on coloured shapes)", path)
    return path


def demo_kind(path: Path | str) -> str | None:
    """The `webui_demo` marker of a safetensors file ("demo-tiny-sd15", "demo-shapes"), None for any other
    file (reads only the header)."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors" or not path.is_file():
        return None
    try:
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            if not 0 < header_len < 100_000_000:
                return None
            header = json.loads(f.read(header_len))
    except (OSError, ValueError):
        return None
    kind = (header.get("__metadata__") or {}).get(DEMO_MARKER[0])
    return kind if kind in (DEMO_MARKER[1], SHAPES_NAME) else None


def is_demo_checkpoint(path: Path | str) -> bool:
    """True for either demo checkpoint (see demo_kind)."""
    return demo_kind(path) is not None


def demo_config_dir(path: Path | str) -> Path | None:
    """The diffusers config folder a demo checkpoint loads with, None for other files."""
    return {DEMO_MARKER[1]: DEMO_CONFIG_DIR, SHAPES_NAME: SHAPES_DIR}.get(demo_kind(path))


def native_size(path: Path | str) -> int | None:
    """The image side a demo checkpoint was trained at (None: not a trained demo, use the usual 512)."""
    return SHAPES_NATIVE_SIZE if demo_kind(path) == SHAPES_NAME else None


def demo_notice_text(kind: str | None, ckpt_dir: Path) -> str:
    """The UI notice for the active demo model: what it draws and how to get a real one."""
    real = f"Put a real checkpoint (.safetensors) into {ckpt_dir} and pick it in the checkpoint list."
    if kind == SHAPES_NAME:
        examples = "; ".join(f"`{p}`" for p in SHAPES_EXAMPLES)
        return ("The demo model is active: a small model trained here on simple shapes (circle, square, "
                "triangle, star) in eight colours, small or large, left/right/top/bottom/centre, on a plain "
                f"background; {SHAPES_NATIVE_SIZE}x{SHAPES_NATIVE_SIZE} (or 64x64). Try: {examples}. "
                "Weights such as `(red:1.4)`, prompt editing `[red:blue:0.5]` and `a red circle AND a blue "
                "square` work on it; shapes are rough, and positions loose. " + real)
    return "The demo model is active: it has random weights and makes abstract images. " + real
