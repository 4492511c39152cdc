"""The detect-resolution resize every resolution-taking preprocessor shares (sd-webui-controlnet's behaviour):
the short side becomes `resolution`, the picture is edge-padded to a multiple of 64 while the filter runs
(so borders see the same neighbourhood a network would), and the padding is cut off again."""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np


def as_rgb(array: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 from grey (HxW, HxWx1) or RGBA (alpha over white, as a transparent drawing reads)."""
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    channels = array.shape[2]
    if channels == 1:
        return np.repeat(array, 3, axis=2)
    if channels == 4:
        alpha = array[:, :, 3:4].astype(np.float32) / 255.0
        over_white = array[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return over_white.clip(0, 255).astype(np.uint8)
    return array[:, :, :3]


def detect_size(height: int, width: int, resolution: int) -> tuple[int, int]:
    """(height, width) after scaling the short side to `resolution` pixels."""
    k = float(resolution) / float(min(height, width))
    return int(np.round(height * k)), int(np.round(width * k))


def resize_short_side(array: np.ndarray, resolution: int) -> np.ndarray:
    """Scale so the short side is `resolution`: area filter when shrinking (no aliasing), cubic when growing."""
    height, width = array.shape[:2]
    new_h, new_w = detect_size(height, width, resolution)
    if (new_h, new_w) == (height, width):
        return array
    grow = new_h > height
    return cv2.resize(array, (new_w, new_h), interpolation=cv2.INTER_CUBIC if grow else cv2.INTER_AREA)


def resize_with_pad(array: np.ndarray, resolution: int) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """(the resized picture edge-padded to multiples of 64, a function cutting a result back to the resized size)."""
    resized = resize_short_side(as_rgb(array), resolution)
    height, width = resized.shape[:2]
    pad_h, pad_w = -height % 64, -width % 64
    padded = np.pad(resized, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")

    def unpad(result: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(result[:height, :width])

    return np.ascontiguousarray(padded), unpad
