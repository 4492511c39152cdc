"""Preprocessors that need no network weights: plain numpy/OpenCV filters, written from the behaviour
sd-webui-controlnet users know (same module names, same maps for the same thresholds).

Each takes an HxWx3 uint8 RGB array, the detect resolution (short side, pixels) and the two thresholds
(already defaulted by the caller) and returns an HxWx3 uint8 RGB map."""
from __future__ import annotations

import cv2
import numpy as np

from .resize import as_rgb, resize_short_side, resize_with_pad

# Content shuffle draws its flow field from noise: a fixed seed keeps the map (and so the generation)
# reproducible for the same input, which a saved infotext promises.
SHUFFLE_SEED = 0


def identity(img: np.ndarray, res: int, a: float, b: float) -> np.ndarray:
    return as_rgb(img)


def invert(img: np.ndarray, res: int, a: float, b: float) -> np.ndarray:
    """Black lines on white (a drawing) -> white lines on black (what line ControlNets were trained on)."""
    return 255 - as_rgb(img)


def canny(img: np.ndarray, res: int, a: float, b: float) -> np.ndarray:
    padded, unpad = resize_with_pad(img, res)
    edges = cv2.Canny(padded, int(a), int(b))
    return unpad(_grey_to_rgb(edges))


def threshold(img: np.ndarray, res: int, a: float, b: float) -> np.ndarray:
    """White where every channel is brighter than `a` (0..255)."""
    padded, unpad = resize_with_pad(img, res)
    result = np.where(padded.min(axis=2) > a, 255, 0).astype(np.uint8)
    return unpad(_grey_to_rgb(result))


def scribble_xdog(img: np.ndarray, res: int, a: float, b: float) -> np.ndarray:
    """Difference of Gaussians (sigma 0.5 vs 5): dark strokes thicker than fine texture become white scribbles;
    a lower `a` keeps fainter strokes."""
    padded, unpad = resize_with_pad(img, res)
    x = padded.astype(np.float32)
    fine = cv2.GaussianBlur(x, (0, 0), 0.5)
    coarse = cv2.GaussianBlur(x, (0, 0), 5.0)
    # How much darker than its surroundings each pixel is, in its least-dark channel.
    darkness = np.clip(np.min(coarse - fine, axis=2), 0, 255)
    result = np.where(2 * darkness > a, 255, 0).astype(np.uint8)
    return unpad(_grey_to_rgb(result))


def lineart_standard(img: np.ndarray, res: int, a: float, b: float) -> np.ndarray:
    """Lines from darkness relative to a wide blur (sigma 6), normalised by the median line strength so a
    faint pencil drawing and a bold ink one give similar maps; white lines on black."""
    padded, unpad = resize_with_pad(img, res)
    x = padded.astype(np.float32)
    blurred = cv2.GaussianBlur(x, (0, 0), 6.0)
    intensity = np.clip(np.min(blurred - x, axis=2), 0, 255)
    strong = intensity[intensity > 8]
    scale = max(16.0, float(np.median(strong))) if strong.size else 16.0
    result = np.clip(intensity / scale * 127.0, 0, 255).astype(np.uint8)
    return unpad(_grey_to_rgb(result))


def blur_gaussian(img: np.ndarray, res: int, a: float, b: float) -> np.ndarray:
    """Gaussian blur with sigma `a` (pixels at detect resolution): a tile/blur ControlNet's input."""
    resized = resize_short_side(as_rgb(img), res)
    return cv2.GaussianBlur(resized, (0, 0), max(float(a), 0.01))


def tile_resample(img: np.ndarray, res: int, a: float, b: float) -> np.ndarray:
    """Shrink by the down-sampling rate `a` (1 = unchanged): the tile ControlNet then invents the detail."""
    rgb = as_rgb(img)
    if a < 1.1:  # rates this close to 1 change nothing visible; keep the input exact
        return rgb
    height, width = rgb.shape[:2]
    size = (max(1, int(width / a)), max(1, int(height / a)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def shuffle(img: np.ndarray, res: int, a: float, b: float) -> np.ndarray:
    """Content shuffle: the picture warped by a smooth random flow (fixed seed), keeping colours and style
    but not composition."""
    resized = resize_short_side(as_rgb(img), res)
    height, width = resized.shape[:2]
    rng = np.random.default_rng(SHUFFLE_SEED)
    map_x = _smooth_noise(rng, height, width, 256) * float(width - 1)
    map_y = _smooth_noise(rng, height, width, 256) * float(height - 1)
    return cv2.remap(resized, map_x, map_y, cv2.INTER_LINEAR)


def color_grid(img: np.ndarray, res: int, a: float, b: float) -> np.ndarray:
    """t2ia_color_grid: the mean colours of 64x64-pixel cells at detect resolution, as flat blocks."""
    resized = _resize_short_side_area(as_rgb(img), res)
    height, width = resized.shape[:2]
    small = cv2.resize(resized, (max(1, width // 64), max(1, height // 64)), interpolation=cv2.INTER_CUBIC)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


def recolor_luminance(img: np.ndarray, res: int, a: float, b: float) -> np.ndarray:
    """Lightness (CIE L*) raised to the gamma `a`, as grey: the recolor ControlNet puts colour back."""
    lightness = cv2.cvtColor(as_rgb(img), cv2.COLOR_RGB2LAB)[:, :, 0]
    return _gamma_grey(lightness, a)


def recolor_intensity(img: np.ndarray, res: int, a: float, b: float) -> np.ndarray:
    """HSV value raised to the gamma `a`, as grey."""
    value = cv2.cvtColor(as_rgb(img), cv2.COLOR_RGB2HSV)[:, :, 2]
    return _gamma_grey(value, a)


def _gamma_grey(channel: np.ndarray, gamma: float) -> np.ndarray:
    result = ((channel.astype(np.float32) / 255.0) ** float(gamma) * 255.0).clip(0, 255).astype(np.uint8)
    return _grey_to_rgb(result)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


def _resize_short_side_area(rgb: np.ndarray, res: int) -> np.ndarray:
    # The colour grid averages cells anyway: area filtering both ways avoids cubic ringing in the colours.
    height, width = rgb.shape[:2]
    k = res / min(height, width)
    size = (int(round(width * k)), int(round(height * k)))
    return rgb if size == (width, height) else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Noise in 0..1 that varies over `cell` pixels: coarse random values upsampled with cubic filtering."""
    coarse = rng.uniform(0.0, 1.0, size=(height // cell + 2, width // cell + 2)).astype(np.float32)
    big = cv2.resize(coarse, (width + 2 * cell, height + 2 * cell), interpolation=cv2.INTER_CUBIC)
    noise = big[cell:cell + height, cell:cell + width]
    noise = noise - noise.min()
    return noise / max(float(noise.max()), 1e-6)
