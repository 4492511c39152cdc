"""Extras steps that extensions register (api.add_extras_step): one image may become several (split, flip),
a caption lands beside the saved image, a failing step is a warning naming it while the rest still saves,
the order follows `order` (upscale 1000) or the order setting, and unknown step names are refused."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageOps

from modules.extensions.api import ExtensionApi, ExtrasStep, PostprocessedImage
from modules.extensions.registry import Contributions, ExtensionRegistry
from modules.paths import Paths
from modules.postprocessing import ExtrasRequest, registered_steps, run_extras
from modules.settings import Settings
from modules.types import UserInputError


def halves(items: list[PostprocessedImage], args: dict) -> list[PostprocessedImage]:
    """Split every image into its left and right half."""
    out = []
    for item in items:
        w, h = item.image.size
        out += [item.copy_with(item.image.crop((0, 0, w // 2, h)), "-left"),
                item.copy_with(item.image.crop((w // 2, 0, w, h)), "-right")]
    return out


def flips(items: list[PostprocessedImage], args: dict) -> list[PostprocessedImage]:
    """Every image and its mirror; the step's own arg goes into the info."""
    for item in items:
        item.info["Flip tag"] = args["tag"]
    return [x for item in items for x in (item, item.copy_with(ImageOps.mirror(item.image), "-flipped"))]


def caption(items: list[PostprocessedImage], args: dict) -> None:
    for item in items:
        item.caption = f"{args['prefix']} {item.image.width}x{item.image.height}"


def broken(items: list[PostprocessedImage], args: dict) -> list[PostprocessedImage]:
    items[0].image = Image.new("RGB", (1, 1))  # edits its input, then fails: the original must survive
    raise RuntimeError("model file missing")


STEPS = (ExtrasStep("Split in halves", halves, order=4000),
         ExtrasStep("Flip", flips, order=4030, defaults={"tag": "default"}),
         ExtrasStep("Caption", caption, order=4040, defaults={"prefix": "size"}),
         ExtrasStep("Broken", broken, order=4035))


def make_ctx(tmp_path: Path, steps=STEPS, **settings):
    registry = ExtensionRegistry()
    contributions = Contributions()
    paths = Paths.from_dirs(tmp_path)
    store = Settings(tmp_path / "config.json")
    api = ExtensionApi("steps-test", tmp_path, settings=store, paths=paths, flags=SimpleNamespace(),
                       contributions=contributions)
    for step in steps:
        api.add_extras_step(step)
    registry.commit("steps-test", contributions)
    ctx = SimpleNamespace(paths=paths, settings=store, upscalers=None,
                          extensions=SimpleNamespace(registry=registry))
    if settings:
        ctx.settings = SimpleNamespace(get=settings.get, as_dict=store.as_dict)
    return ctx


@pytest.fixture
def picture() -> Image.Image:
    y, x = np.mgrid[0:40, 0:60]
    return Image.fromarray(np.stack([x * 4, y * 6, (x * y) % 256], axis=2).astype(np.uint8))


def test_split_then_flip_gives_four_images_of_the_right_size_and_content(tmp_path, picture):
    ctx = make_ctx(tmp_path)
    request = ExtrasRequest(images=(("photo.png", picture),), save=True,
                            steps={"Split in halves": {"enable": True}, "flip": {"enable": True, "tag": "x"}})
    result = run_extras(ctx, request)
    assert [im.size for im in result.images] == [(30, 40)] * 4
    left = np.asarray(picture.crop((0, 0, 30, 40)))
    assert np.array_equal(np.asarray(result.images[0]), left)
    assert np.array_equal(np.asarray(result.images[1]), left[:, ::-1])
    assert [im.info["extras"] for im in result.images] == ["Flip tag: x"] * 4
    assert len(result.saved_paths) == 4 and len(set(result.saved_paths)) == 4
    assert not result.warnings
    assert not list(Path(result.saved_paths[0]).parent.glob("*.txt"))  # no caption step: no caption files


def test_upscale_runs_first_and_a_caption_is_written_beside_each_saved_image(tmp_path, picture):
    ctx = make_ctx(tmp_path)
    request = ExtrasRequest(images=(("a.png", picture), ("b.png", picture)), save=True, upscaler_1="Nearest",
                            upscaling_resize=2, steps={"Flip": {}, "Caption": {"enable": True}})
    result = run_extras(ctx, request)
    saved = [Path(p) for p in result.saved_paths]
    assert [p.name for p in saved] == ["a.png", "a-flipped.png", "b.png", "b-flipped.png"]
    assert [im.size for im in result.images] == [(120, 80)] * 4  # upscaled before the flip
    for path in saved:
        assert path.with_suffix(".txt").read_text(encoding="utf-8") == "size 120x80"
        with Image.open(path) as image:
            assert image.info["extras"] == ("Postprocess upscale by: 2, Postprocess upscaler: Nearest, "
                                            "Flip tag: default")


def test_a_failing_step_is_a_warning_naming_it_and_the_rest_still_saves(tmp_path, picture):
    ctx = make_ctx(tmp_path)
    request = ExtrasRequest(images=(("a.png", picture), ("b.png", picture)), save=True,
                            steps={"Flip": {}, "Broken": {}, "Caption": {}})
    result = run_extras(ctx, request)
    # once, not once per image
    assert result.warnings == ["Extras step 'Broken' failed: RuntimeError: model file missing"]
    assert len(result.saved_paths) == 4
    assert [im.size for im in result.images] == [(60, 40)] * 4  # the broken step's edit did not stick
    assert all(Path(p).with_suffix(".txt").read_text() == "size 60x40" for p in result.saved_paths)


def test_a_disabled_step_does_not_run_and_unknown_names_are_refused(tmp_path, picture):
    ctx = make_ctx(tmp_path)
    result = run_extras(ctx, ExtrasRequest(images=(("a.png", picture),), steps={"Flip": {"enable": False}}))
    assert len(result.images) == 1
    known = "Split in halves, Flip, Broken, Caption"
    with pytest.raises(UserInputError, match=f"unknown Extras step 'Flipp'; known: {known}"):
        run_extras(ctx, ExtrasRequest(images=(("a.png", picture),), steps={"Flipp": {}}))


def test_order_setting_puts_named_steps_first_and_disabled_ones_are_hidden(tmp_path, picture):
    ctx = make_ctx(tmp_path, postprocessing_operation_order=["Caption", "Upscale"],
                   postprocessing_disable_in_extras=["Broken"])
    assert [s.name for s in registered_steps(ctx)] == ["Caption", "Split in halves", "Flip"]
    request = ExtrasRequest(images=(("a.png", picture),), upscaler_1="Nearest", upscaling_resize=2,
                            steps={"Caption": {}}, save=True)
    result = run_extras(ctx, request)
    assert result.images[0].size == (120, 80)
    # Caption now runs before the upscale: it saw the source's size.
    assert Path(result.saved_paths[0]).with_suffix(".txt").read_text() == "size 60x40"
    with pytest.raises(UserInputError, match="unknown Extras step 'Broken'"):
        run_extras(ctx, ExtrasRequest(images=(("a.png", picture),), steps={"Broken": {}}))


def test_add_extras_step_wants_an_extras_step(tmp_path):
    api = ExtensionApi("x", tmp_path, settings=None, paths=None, flags=None)
    with pytest.raises(TypeError, match="expected an ExtrasStep, not function"):
        api.add_extras_step(halves)
