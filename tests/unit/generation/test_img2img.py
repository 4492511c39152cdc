"""img2img and inpaint on the tiny SD1.5 pipeline, plus the pure mask/resize helpers they use."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from modules.generation import masks
from modules.generation.img2img import generate_img2img
from modules.types import GenerationRequest, UserInputError


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def base(photo) -> GenerationRequest:
    return GenerationRequest(mode="img2img", prompt="a tiled floor", init_images=(photo,), width=64,
                             height=64, steps=4, denoising_strength=0.5, sampler_name="Euler", seed=3)


@pytest.fixture(scope="module")
def hole(photo) -> Image.Image:
    """Repaint a 32x24 rectangle in the middle of the 96x64 photo."""
    mask = Image.new("L", photo.size, 0)
    mask.paste(255, (32, 20, 64, 44))
    return mask


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_each_resize_mode_gives_the_requested_size(sd15, base, mode):
    result = generate_img2img(sd15, base.with_changes(resize_mode=mode, width=64, height=96))
    assert result.images[0].size == (64, 96)
    assert "Denoising strength: 0.5" in result.infotexts[0]


@pytest.mark.parametrize("full_res", [False, True])
def test_inpaint_changes_only_the_masked_area(sd15, base, photo, hole, full_res):
    request = base.with_changes(mask=hole, width=96 if not full_res else 64, height=64, mask_blur=2,
                                inpaint_full_res=full_res, inpaint_full_res_padding=8, denoising_strength=0.9)
    result = generate_img2img(sd15, request)
    out, src = pixels(result.images[0]), pixels(photo)
    assert result.images[0].size == photo.size  # only-masked pastes back into the full picture
    # clear of the blurred edge: a Gaussian of radius (sigma) 2 reaches ~3 sigma out
    outside = np.asarray(hole.filter(ImageFilter.MaxFilter(15))) == 0
    assert np.abs(out - src)[outside].max() <= 1
    assert np.abs(out - src)[np.asarray(hole) > 0].mean() > 10
    assert ("Inpaint area: Only masked" in result.infotexts[0]) == full_res


@pytest.mark.parametrize("fill", [0, 2, 3])
def test_masked_content_modes_run_and_keep_the_outside(sd15, base, photo, hole, fill):
    request = base.with_changes(mask=hole, width=96, height=64, mask_blur=0, inpainting_fill=fill, steps=2)
    out = pixels(generate_img2img(sd15, request).images[0])
    assert np.abs(out - pixels(photo))[np.asarray(hole) == 0].max() <= 1


def test_transparent_pixels_of_the_init_image_are_the_mask(sd15, base, photo, hole):
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.eval(hole, lambda v: 255 - v))
    result = generate_img2img(sd15, base.with_changes(init_images=(rgba,), width=96, height=64, mask_blur=0))
    out = pixels(result.images[0])
    assert np.abs(out - pixels(photo))[np.asarray(hole) == 0].max() <= 1
    assert "Mask blur" in result.infotexts[0] or "Masked content" in result.infotexts[0]


def test_a_mask_of_another_size_is_one_error_naming_mask(sd15, base):
    with pytest.raises(UserInputError) as caught:
        generate_img2img(sd15, base.with_changes(mask=Image.new("L", (10, 10), 255)))
    assert caught.value.field == "mask" and "10x10" in str(caught.value)


def test_unreadable_image_bytes_are_one_error_naming_init_images(sd15, base, photo):
    with pytest.raises(UserInputError) as caught:
        generate_img2img(sd15, base.with_changes(init_images=(b"\x89PNG not really",)))
    assert caught.value.field == "init_images"
    encoded = io.BytesIO()
    photo.save(encoded, format="PNG")
    assert masks.read_image(encoded.getvalue(), "init_images").size == photo.size


def test_missing_init_image_names_the_field(sd15, base):
    with pytest.raises(UserInputError) as caught:
        generate_img2img(sd15, base.with_changes(init_images=()))
    assert caught.value.field == "init_images"


# ---- pure helpers --------------------------------------------------------------------------------------

def test_resize_and_fill_fits_the_image_and_repeats_its_edges(photo):
    out = pixels(masks.resize_image(photo, 96, 96, 2))
    fitted = pixels(photo)  # 96x64 fits 96 wide unchanged; 16 rows of border above and below
    assert out.shape == (96, 96, 3)
    assert np.array_equal(out[16:80], fitted)
    assert np.array_equal(out[0], fitted[0]) and np.array_equal(out[95], fitted[-1])


def test_crop_and_resize_covers_without_distortion(photo):
    out = masks.resize_image(photo, 64, 64, 1)
    assert out.size == (64, 64)
    # the middle column of the photo stays in the middle
    assert np.abs(pixels(out)[:, 32] - pixels(photo)[:, 48]).mean() < 12


def test_only_masked_box_is_padded_clamped_and_at_the_target_aspect(hole):
    box = masks.mask_box(hole, 8)
    assert box == (24, 12, 72, 52)
    assert masks.mask_box(hole, 100) == (0, 0, 96, 64)
    left, top, right, bottom = masks.expand_to_aspect(box, 64, 64, hole.size)
    assert right - left == bottom - top == 48 and 0 <= left and right <= 96
    assert masks.mask_box(Image.new("L", (8, 8), 0), 4) is None


def test_fill_puts_surrounding_colours_into_the_hole():
    image = Image.new("RGB", (32, 32), (200, 40, 40))
    image.paste((0, 0, 0), (8, 8, 24, 24))  # what was under the mask must not survive
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (8, 8, 24, 24))
    filled = pixels(masks.fill_masked(image, mask))
    assert np.abs(filled[16, 16] - np.array([200, 40, 40])).max() <= 2


def test_sketch_layers_composite_and_give_a_mask(photo):
    layer = Image.new("RGBA", photo.size, (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (0, 0, 10, 10))
    sketched = masks.composite_sketch(photo, layer)
    assert sketched.getpixel((5, 5)) == (255, 255, 255)
    assert sketched.getpixel((50, 50)) == photo.getpixel((50, 50))
    mask = masks.mask_from_sketch(photo, sketched)
    assert mask.getbbox() == (0, 0, 10, 10)
