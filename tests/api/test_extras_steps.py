"""dataset_tools' Preprocess steps in Extras, on a real app (built-in extensions loaded): run_extras on a
folder with focal crop + flipped copies + caption (tiny WD14 tagger) writes exactly the images and .txt files; the
API's optional `extras_steps` field splits/flips through /sdapi/v1/extra-batch-images, unknown steps are
refused before queueing, a failing step is a warning while the images still come back."""
from __future__ import annotations

import base64
import html
import io

import numpy as np
import pytest
from PIL import Image

from modules.postprocessing import ExtrasRequest, registered_steps, run_extras
from tests.api.inprocess import build_app, build_ctx, local_client, png_b64
from tests.fixtures.taggers import write_tiny_tagger

STEP_NAMES = ["Split oversized images", "Auto focal point crop", "Auto-sized crop", "Create flipped copies",
              "Caption"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    ctx = build_ctx(tmp_path_factory.mktemp("extras-steps"))
    write_tiny_tagger(ctx.paths.models_dir / "interrogators" / "tiny-wd14")
    with local_client(build_app(ctx)) as test_client:
        yield test_client, ctx
    ctx.close()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def decode(text: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(text)))


def test_dataset_steps_are_registered_in_a1111_order(app):
    client, ctx = app
    assert [s.name for s in registered_steps(ctx)] == STEP_NAMES
    listed = client.get("/sdapi/v1/extras-steps").json()
    assert [s["name"] for s in listed] == STEP_NAMES
    assert listed[3]["args"] == {"enable": False, "option": ["Horizontal"]}


def test_folder_focal_crop_flip_and_caption_write_the_files(app, tmp_path):
    _, ctx = app
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    Image.new("RGB", (96, 64), (255, 0, 0)).save(src / "red_car.png")
    Image.new("RGB", (64, 96), (0, 0, 255)).save(src / "blue_sky.png")
    request = ExtrasRequest(input_dir=str(src), output_dir=str(out), save=True, steps={
        "Auto focal point crop": {"enable": True, "width": 64, "height": 48},
        "Create flipped copies": {"enable": True},
        "Caption": {"enable": True, "tagger": "tiny-wd14", "general_threshold": 1.0,
                    "character_threshold": 1.0}})
    result = run_extras(ctx, request)
    assert not result.warnings
    assert sorted(p.name for p in out.iterdir()) == [
        "blue_sky-flipped.png", "blue_sky-flipped.txt", "blue_sky.png", "blue_sky.txt",
        "red_car-flipped.png", "red_car-flipped.txt", "red_car.png", "red_car.txt"]
    for name in ("red_car.png", "red_car-flipped.png", "blue_sky.png", "blue_sky-flipped.png"):
        with Image.open(out / name) as image:
            assert image.size == (64, 48)
            assert image.info["extras"] == "Auto focal point crop: 64x48, Caption: tiny-wd14"
    assert (out / "red_car.txt").read_text() == "red theme"
    assert (out / "red_car-flipped.txt").read_text() == "red theme"
    assert (out / "blue_sky.txt").read_text() == "blue sky"
    assert not list(src.glob("*.txt"))  # the source folder is never written to


def test_api_split_and_flip_give_every_image_back(app):
    client, _ = app
    source = noise(128, 32, 1)
    answer = client.post("/sdapi/v1/extra-batch-images", json={
        "imageList": [{"data": png_b64(source), "name": "wide.png"}], "upscaler_1": "None",
        "extras_steps": {"Split oversized images": {"enable": True, "width": 32, "height": 32, "overlap": 0},
                         "Create flipped copies": {"enable": True, "option": ["Horizontal", "Vertical"]}}})
    assert answer.status_code == 200, answer.text
    images = [decode(t) for t in answer.json()["images"]]
    assert len(images) == 12 and {im.size for im in images} == {(32, 32)}  # 4 tiles x (itself + 2 flips)
    tile = np.asarray(images[0].convert("RGB"))
    assert np.array_equal(tile, np.asarray(source.crop((0, 0, 32, 32))))
    assert np.array_equal(np.asarray(images[1].convert("RGB")), tile[:, ::-1])
    assert np.array_equal(np.asarray(images[2].convert("RGB")), tile[::-1])
    assert images[3].info["extras"] == "Split oversized images: 32x32, tile 2 of 4"

    # Without the field the answer is A1111's: one image per input.
    plain = client.post("/sdapi/v1/extra-batch-images", json={
        "imageList": [{"data": png_b64(source), "name": "wide.png"}], "upscaler_1": "None"})
    assert len(plain.json()["images"]) == 1


def test_api_refuses_unknown_steps_and_reports_a_failing_one(app):
    client, ctx = app
    before = len(ctx.jobs.list())
    answer = client.post("/sdapi/v1/extra-single-image", json={"image": png_b64(noise(32, 32)),
                                                                "extras_steps": {"Zoom": {"enable": True}}})
    assert answer.status_code == 422 and "unknown Extras step 'Zoom'" in answer.text
    assert len(ctx.jobs.list()) == before  # refused before queueing
    answer = client.post("/sdapi/v1/extra-single-image", json={
        "image": png_b64(noise(32, 32)),
        "extras_steps": {"Caption": {"enable": True, "tagger": "no-such-tagger"}}})
    assert answer.status_code == 200, answer.text
    expected = "Extras step 'Caption' failed: ModelNotFound: model 'no-such-tagger' not found"
    assert html.escape(expected) in answer.json()["html_info"]
    assert decode(answer.json()["image"]).size == (32, 32)
