"""The control image of a unit: which image (its own, or img2img's init image), preprocessed once, then fitted
to each size the UNet runs at (resize modes as sd-webui-controlnet names them) and turned into a tensor."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from modules.types import UserInputError

from .units import ControlUnit


def source_image(unit: ControlUnit, index: int, init_image: Image.Image | None) -> Image.Image:
    """The unit's input: its own image, or the img2img init image when asked for or when it has none
    (A1111 behaviour); in txt2img a unit without an image is an error."""
    if unit.use_img2img_input and init_image is not None:
        return init_image.convert("RGB")
    if unit.image is not None:
        return unit.image.convert("RGB")
    if init_image is not None:
        return init_image.convert("RGB")
    raise UserInputError(f"ControlNet unit {index} has no image", field="alwayson_scripts")


def pixel_perfect_resolution(image: Image.Image, width: int, height: int, resize_mode: str) -> int:
    """The preprocessor resolution that makes the detected map land 1:1 on the target's pixels
    (sd-webui-controlnet's pixel perfect): the short side, scaled as the resize mode will scale it."""
    raw_w, raw_h = image.size
    k_h, k_w = height / raw_h, width / raw_w
    scale = min(k_h, k_w) if resize_mode == "Resize and Fill" else max(k_h, k_w)
    return max(1, int(round(scale * min(raw_h, raw_w))))


def preprocess(unit: ControlUnit, index: int, image: Image.Image, width: int, height: int, *,
               annotators_dir: Path, cache=None) -> Image.Image:
    """Run the unit's preprocessor (module) on `image`; "none" passes it through. The one call site of
    the preprocessors package."""
    resolution = (pixel_perfect_resolution(image, width, height, unit.resize_mode) if unit.pixel_perfect
                  else unit.processor_res)
    module = (unit.module or "none").strip()
    if module.lower() in ("none", ""):
        return image
    try:
        from .preprocessors import run_preprocessor
    except ImportError:
        raise UserInputError(f"ControlNet unit {index}: preprocessor {module!r} is not available (no "
                             "preprocessors installed); use module \"none\" with a ready control map"
                             ) from None
    extra = {"cache": cache} if cache is not None else {}
    detected = run_preprocessor(module, image, resolution, unit.threshold_a, unit.threshold_b,
                                annotators_dir=annotators_dir, **extra)
    return detected.convert("RGB")


def fit(image: Image.Image, width: int, height: int, resize_mode: str) -> Image.Image:
    """`image` at exactly width x height: Just Resize stretches, Crop and Resize covers then crops the
    centre, Resize and Fill fits inside then pads with black (no control where there was no image)."""
    if image.size == (width, height):
        return image
    if resize_mode == "Just Resize":
        return image.resize((width, height), Image.LANCZOS)
    w, h = image.size
    cover = resize_mode == "Crop and Resize"
    scale = max(width / w, height / h) if cover else min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = image.resize((new_w, new_h), Image.LANCZOS)
    if cover:
        left, top = (new_w - width) // 2, (new_h - height) // 2
        return resized.crop((left, top, left + width, top + height))
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    canvas.paste(resized, ((width - new_w) // 2, (height - new_h) // 2))
    return canvas


def to_tensor(image: Image.Image, *, device, dtype):
    """1x3xHxW in [0, 1], RGB: what diffusers' ControlNet pipelines feed the ControlNet."""
    import numpy as np
    import torch

    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).to(device=device, dtype=dtype)
