"""The control map's geometry: resize modes against the target size, pixel perfect's preprocessor
resolution (sd-webui-controlnet's rule), which image a unit uses, and the tensor the ControlNet gets."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from modules.types import UserInputError


def two_tone(width: int, height: int) -> Image.Image:
    """Left half red, right half blue: where the crop and the padding go shows in the colours."""
    array = np.zeros((height, width, 3), np.uint8)
    array[:, : width // 2] = (255, 0, 0)
    array[:, width // 2:] = (0, 0, 255)
    return Image.fromarray(array)


def test_resize_modes(cn):
    wide = two_tone(200, 100)
    fit = cn.control_image.fit
    stretched = fit(wide, 64, 64, "Just Resize")
    assert stretched.size == (64, 64) and stretched.getpixel((2, 32)) == (255, 0, 0)
    cropped = np.asarray(fit(wide, 64, 64, "Crop and Resize"))  # covers 128x64, keeps the centre 64 columns
    assert cropped.shape == (64, 64, 3)
    assert tuple(cropped[32, 0]) == (255, 0, 0) and tuple(cropped[32, 63]) == (0, 0, 255)
    filled = np.asarray(fit(wide, 64, 64, "Resize and Fill"))  # fits as 64x32, black bands above and below
    assert tuple(filled[2, 32]) == (0, 0, 0) and tuple(filled[32, 2]) == (255, 0, 0)
    assert fit(wide, 200, 100, "Crop and Resize") is wide


@pytest.mark.parametrize("size, target, mode, expected", [
    ((512, 512), (768, 768), "Crop and Resize", 768),
    ((1024, 512), (512, 512), "Crop and Resize", 512),  # covering scales the short side to 512
    ((1024, 512), (512, 512), "Resize and Fill", 256),  # fitting scales it to 256
    ((300, 200), (600, 400), "Just Resize", 400),
])
def test_pixel_perfect_resolution(cn, size, target, mode, expected):
    image = Image.new("RGB", size)
    assert cn.control_image.pixel_perfect_resolution(image, *target, mode) == expected


def test_which_image_a_unit_uses(cn):
    own, init = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")
    unit = cn.units.ControlUnit
    assert cn.control_image.source_image(unit(image=own), 0, None).getpixel((0, 0)) == (255, 0, 0)
    chosen = cn.control_image.source_image(unit(image=own, use_img2img_input=True), 0, init)
    assert chosen.getpixel((0, 0)) == (0, 0, 255)
    assert cn.control_image.source_image(unit(), 0, init).getpixel((0, 0)) == (0, 0, 255)
    with pytest.raises(UserInputError, match="ControlNet unit 1 has no image"):
        cn.control_image.source_image(unit(), 1, None)


def test_tensor_is_rgb_in_unit_range(cn):
    tensor = cn.control_image.to_tensor(two_tone(4, 2), device="cpu", dtype=torch.float32)
    assert tensor.shape == (1, 3, 2, 4) and tensor.max() == 1.0 and tensor.min() == 0.0
    assert tensor[0, 0, 0, 0] == 1.0 and tensor[0, 2, 0, 3] == 1.0


def test_preprocess_none_passes_through_and_canny_runs(cn, tmp_path):
    image = two_tone(64, 64)
    unit = cn.units.ControlUnit(module="none")
    assert cn.control_image.preprocess(unit, 0, image, 64, 64, annotators_dir=tmp_path) is image
    edges = cn.control_image.preprocess(cn.units.ControlUnit(module="canny", threshold_a=100, threshold_b=200,
                                                             processor_res=64), 0, image, 64, 64,
                                        annotators_dir=tmp_path)
    array = np.asarray(edges)
    assert edges.mode == "RGB" and array.max() == 255
    assert array[:, 31:33].max() == 255 and array[:, :20].max() == 0  # the one edge, between the halves
