"""Auto focal-point crop (extensions/dataset_tools/focal.py): faces on a real photo, entropy on a synthetic one."""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modules.extensions.loader import import_extension_package

ROOT = Path(__file__).resolve().parents[3]
import_extension_package("dataset_tools", ROOT / "extensions" / "dataset_tools")
focal = importlib.import_module("webui_extensions.dataset_tools.focal")
ops = importlib.import_module("webui_extensions.dataset_tools.preprocess_ops")

# The astronaut's face in skimage's 512x512 photo, read off the picture by eye (not from our detector):
# forehead to chin, ear to ear, (left, top, right, bottom).
ASTRONAUT_FACE = (182, 72, 268, 158)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    skimage_data = pytest.importorskip("skimage.data")
    return Image.fromarray(skimage_data.astronaut())


def contains(box, inner) -> bool:
    return box[0] <= inner[0] and box[1] <= inner[1] and box[2] >= inner[2] and box[3] >= inner[3]


@pytest.mark.parametrize("target", [(160, 512), (512, 160), (128, 128)], ids=["tall", "wide", "small"])
def test_focal_crop_keeps_the_astronauts_face(astronaut, target):
    crop, analysis, box = focal.focal_crop(astronaut, target)
    assert crop.size == target
    assert analysis.faces, "the Haar detector found no face"
    scale = max(target[0] / 512, target[1] / 512)  # the photo scaled to cover the target
    face = tuple(round(v * scale) for v in ASTRONAUT_FACE)
    assert contains(box, face), f"crop {box} cuts the face {face}"


def test_a_centre_crop_would_cut_the_face(astronaut):
    # The wide case above is a real test: the plain centre of the photo misses the face.
    box = focal.window_around((512, 512), (512, 160), (256, 256))
    assert not contains(box, ASTRONAUT_FACE)


@pytest.mark.parametrize("busy_left", [True, False], ids=["busy-left", "busy-right"])
def test_entropy_only_crop_picks_the_busy_region(busy_left):
    rng = np.random.default_rng(0)
    pixels = np.full((128, 512, 3), 128, dtype=np.uint8)
    x0 = 16 if busy_left else 400
    pixels[16:112, x0:x0 + 96] = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    crop, analysis, box = focal.focal_crop(image, (128, 128), focal.FocalWeights(face=0, entropy=1, edges=0))
    assert analysis.faces == [] and analysis.edges_center is None
    assert box[0] <= x0 + 16 and box[2] >= x0 + 80, f"crop {box} misses the busy patch at x={x0}..{x0 + 96}"


def test_a_flat_image_falls_back_to_the_centre():
    image = Image.new("RGB", (300, 100), (90, 90, 90))
    _, analysis, box = focal.focal_crop(image, (100, 100))
    assert box == (100, 0, 200, 100)
    assert analysis.faces == [] and analysis.entropy_center is None and analysis.corners == []


def test_debug_overlay_draws_on_a_copy(astronaut):
    result = ops.process_image(astronaut, (160, 512), "focal")[0]
    overlay = focal.debug_overlay(result.scaled, result.analysis, result.box)
    assert overlay.size == result.scaled.size
    assert overlay.tobytes() != result.scaled.tobytes()
    # The face box is drawn in pure red, which the photo does not hold on that line.
    x, y, w, h = result.analysis.faces[0]
    assert overlay.getpixel((x + w // 2, y)) == (255, 0, 0)
