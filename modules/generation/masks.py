"""Images and masks for img2img/inpaint: reading, the four resize modes, mask preparation and blur, the
"only masked" crop box, masked-content fill, sketch layers and the final composite. Pure PIL/numpy.

Mask convention (A1111): white = repaint, black = keep. Sizes are pixels (width, height).
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from modules.types import UserInputError

Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive)


def read_image(value, field: str) -> Image.Image:
    """A PIL image (or encoded bytes) fully decoded; raises UserInputError naming `field` when unreadable."""
    try:
        image = Image.open(io.BytesIO(bytes(value))) if isinstance(value, (bytes, bytearray)) else value
        if not isinstance(image, Image.Image):
            raise TypeError(type(value).__name__)
        image.load()  # decode now: a truncated file must fail here, not in the middle of sampling
    except (OSError, SyntaxError, TypeError, ValueError) as exc:
        raise UserInputError(f"could not read the image ({exc})", field=field) from None
    return image


def resize_image(image: Image.Image, width: int, height: int, mode: int) -> Image.Image:
    """A1111 resize modes: 0 just resize, 1 crop and resize (cover, centre crop), 2 resize and fill
    (fit, stretch the edges into the borders); 3 (latent upscale) resizes here like 0 for masks."""
    if mode == 1:
        return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)
    if mode == 2:
        return _resize_and_fill(image, width, height)
    return image.resize((width, height), Image.Resampling.LANCZOS)


def _resize_and_fill(image: Image.Image, width: int, height: int) -> Image.Image:
    scale = min(width / image.width, height / image.height)
    fit_w, fit_h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    fitted = np.asarray(image.resize((fit_w, fit_h), Image.Resampling.LANCZOS))
    left, top = (width - fit_w) // 2, (height - fit_h) // 2
    # The borders repeat the nearest edge row/column, so the model sees a continuation, not a bar.
    pads = ((top, height - fit_h - top), (left, width - fit_w - left)) + ((0, 0),) * (fitted.ndim - 2)
    return Image.fromarray(np.pad(fitted, pads, mode="edge"))


def mask_from_request(mask, init: Image.Image, invert: bool) -> Image.Image | None:
    """The repaint mask as 'L': request.mask, else the init image's transparency (transparent = repaint)."""
    if mask is None:
        if "A" not in init.getbands():
            return None
        alpha = init.getchannel("A")
        if alpha.getextrema() == (255, 255):
            return None  # fully opaque: plain img2img
        mask = ImageOps.invert(alpha)
    else:
        mask = read_image(mask, "mask")
        if mask.size != init.size:
            raise UserInputError(f"mask is {mask.width}x{mask.height} but the image is "
                                 f"{init.width}x{init.height}; they must be the same size", field="mask")
        # An RGBA mask (a painted layer) means its painted pixels; otherwise its brightness.
        mask = mask.getchannel("A") if "A" in mask.getbands() and mask.mode != "LA" else mask.convert("L")
    return ImageOps.invert(mask) if invert else mask


def blur_mask(mask: Image.Image, blur_x: int, blur_y: int) -> Image.Image:
    """Gaussian blur with separate x/y radii in pixels (0 = none)."""
    if blur_x <= 0 and blur_y <= 0:
        return mask
    return mask.filter(ImageFilter.GaussianBlur((max(blur_x, 0), max(blur_y, 0))))


def mask_box(mask: Image.Image, padding: int) -> Box | None:
    """Bounding box of the repaint area grown by `padding` pixels, clamped to the image; None if empty."""
    box = mask.point(lambda v: 255 if v > 0 else 0).getbbox()
    if box is None:
        return None
    left, top, right, bottom = box
    return (max(left - padding, 0), max(top - padding, 0),
            min(right + padding, mask.width), min(bottom + padding, mask.height))


def expand_to_aspect(box: Box, width: int, height: int, size: tuple[int, int]) -> Box:
    """Grow `box` to the aspect ratio width:height (so the crop is not distorted), staying inside `size`."""
    left, top, right, bottom = box
    box_w, box_h = right - left, bottom - top
    want = width / height
    if box_w / box_h < want:
        box_w = min(size[0], round(box_h * want))
    else:
        box_h = min(size[1], round(box_w / want))
    cx, cy = (left + right) / 2, (top + bottom) / 2
    new_left = int(min(max(cx - box_w / 2, 0), size[0] - box_w))
    new_top = int(min(max(cy - box_h / 2, 0), size[1] - box_h))
    return new_left, new_top, new_left + box_w, new_top + box_h


def fill_masked(image: Image.Image, mask: Image.Image) -> Image.Image:
    """Masked content "fill": repaint area replaced by colours spread in from around it (blur of the kept
    pixels, normalised by how much kept area each blur saw), coarse to fine."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    keep = (np.asarray(mask.convert("L"), dtype=np.float32) < 128).astype(np.float32)
    out = rgb.copy()
    hole = keep < 0.5
    for radius in (64, 16, 4, 1):
        weighted = _blur_array(rgb * keep[..., None], radius)
        weight = _blur_array(np.repeat(keep[..., None], 3, axis=2), radius)
        spread = weighted / np.maximum(weight, 1e-6)
        seen = (weight[..., 0] > 1e-3) & hole
        out[seen] = spread[seen]
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))


def _blur_array(array: np.ndarray, radius: int) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(array, sigma=(radius, radius, 0), mode="nearest")


def composite(original: Image.Image, generated: Image.Image, mask: Image.Image) -> Image.Image:
    """Generated pixels where the (blurred) mask is white, the original's where black; sizes must match."""
    return Image.composite(generated.convert("RGB"), original.convert("RGB"), mask.convert("L"))


def paste_region(base: Image.Image, region: Image.Image, box: Box, mask: Image.Image) -> Image.Image:
    """`region` resized into `box` of `base`, blended by `mask` (full-size, 'L'): the "only masked" paste."""
    canvas = base.convert("RGB").copy()
    canvas.paste(region.convert("RGB").resize((box[2] - box[0], box[3] - box[1]), Image.Resampling.LANCZOS),
                 box[:2])
    return composite(base, canvas, mask)


def composite_sketch(background: Image.Image, sketch: Image.Image) -> Image.Image:
    """Sketch tab: the drawn layer (RGBA) over the background, as the image img2img starts from."""
    base = background.convert("RGBA")
    layer = sketch.convert("RGBA").resize(base.size) if sketch.size != base.size else sketch.convert("RGBA")
    return Image.alpha_composite(base, layer).convert("RGB")


def mask_from_sketch(original: Image.Image, sketched: Image.Image, threshold: int = 8) -> Image.Image:
    """Inpaint sketch: repaint where the sketched image differs from the original by more than `threshold`."""
    a = np.asarray(original.convert("RGB"), dtype=np.int16)
    b = np.asarray(sketched.convert("RGB").resize(original.size), dtype=np.int16)
    changed = np.abs(a - b).max(axis=2) > threshold
    return Image.fromarray((changed * 255).astype(np.uint8), mode="L")
