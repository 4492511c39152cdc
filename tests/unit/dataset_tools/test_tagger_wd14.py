"""WD14 ONNX taggers on a tiny model with known confidences (tests/fixtures/taggers.py): preprocessing
(BGR, white square padding, model input size) and every caption option, exactly."""
from __future__ import annotations

import pytest
from PIL import Image

from tests.fixtures.taggers import SIZE, dataset_tools, write_tiny_tagger

options_mod = dataset_tools("taggers.options")
catalog_mod = dataset_tools("taggers.catalog")
TagOptions = options_mod.TagOptions


@pytest.fixture(scope="module")
def taggers(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    write_tiny_tagger(models / "interrogators" / "tiny-wd14")
    return catalog_mod.Taggers(models)


def red(width=64, height=64):
    return Image.new("RGB", (width, height), (255, 0, 0))


def test_catalog_lists_model_folders_only(taggers, tmp_path):
    (taggers.wd14.root / "half-copied").mkdir(exist_ok=True)
    (taggers.wd14.root / "half-copied" / "model.onnx").write_bytes(b"")
    assert taggers.wd14.models() == ["tiny-wd14"]
    assert taggers.names() == ["tiny-wd14", "deepdanbooru", "clip"]
    assert taggers.resolve("TINY-wd14") == (taggers.wd14, "tiny-wd14")
    assert taggers.resolve("nope") is None


def test_scores_by_category_with_bgr_input(taggers):
    scores = taggers.wd14.scores(red(), "tiny-wd14")
    assert scores.rating == pytest.approx({"general": 0.7, "sensitive": 0.2, "questionable": 0.05,
                                           "explicit": 0.01})
    assert scores.character == pytest.approx({"hatsune_miku": 0.9, "kagamine_rin": 0.5})
    # red is the last channel of BGR: a model fed RGB would see blue here
    assert scores.general["red_theme"] == pytest.approx(1.0)
    assert scores.general["blue_sky"] == pytest.approx(0.0)


def test_wide_image_is_padded_square_with_white(taggers):
    scores = taggers.wd14.scores(red(64, 32), "tiny-wd14")
    # half the square is white padding: blue mean 0.5, red stays 1.0
    assert scores.general["red_theme"] == pytest.approx(1.0, abs=0.01)
    assert scores.general["blue_sky"] == pytest.approx(0.5, abs=0.02)


def test_prepare_shape_and_range():
    wd14 = dataset_tools("taggers.wd14")
    batch = wd14.prepare(Image.new("RGBA", (10, 20), (0, 0, 255, 0)), SIZE)
    assert batch.shape == (1, SIZE, SIZE, 3) and batch.dtype.name == "float32"
    assert batch.max() == 255.0 and batch.min() == 255.0  # transparent pixels become white


def caption(taggers, image=None, **options):
    return taggers.wd14.caption(image or red(), "tiny-wd14", TagOptions(**options))


def test_default_caption(taggers):
    # general >= 0.35, character >= 0.85, by confidence; underscores -> spaces but not in ^_^; escaped ()
    assert caption(taggers) == r"red theme, hatsune miku, 1girl, solo, ^_^, star \(symbol\)"


def test_thresholds(taggers):
    assert caption(taggers, general_threshold=0.55, character_threshold=0.4) == \
        "red theme, hatsune miku, 1girl, solo, kagamine rin"
    assert caption(taggers, general_threshold=1.0, character_threshold=1.0) == "red theme"


def test_exclude_additional_ratings_and_max(taggers):
    text = caption(taggers, exclude=("solo", "hatsune_miku", "Star (symbol)"),
                   additional=("my style", "1girl"),
                   include_ratings=True)
    assert text == r"my style, 1girl, general, red theme, ^_^"
    assert caption(taggers, max_tags=2) == "red theme, hatsune miku"


def test_formatting_switches(taggers):
    assert caption(taggers, replace_underscores=False, escape_brackets=False, sort_by_confidence=False) == \
        "1girl, ^_^, hatsune_miku, red_theme, solo, star_(symbol)"


def test_kaomoji_rule():
    assert [options_mod.is_kaomoji(t) for t in ("^_^", "o_o", "(o)_(o)", "||_||", "long_hair", "x_x_x")] == \
        [True, True, True, True, False, False]


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="general_threshold"):
        TagOptions(general_threshold=1.5)


def test_missing_networks_name_their_files(taggers):
    with pytest.raises(Exception, match=r"models/torch_deepdanbooru/model-resnet_custom_v3\.pt"):
        taggers.deepdanbooru.caption(red(), "deepdanbooru")
    with pytest.raises(Exception, match=r"models/BLIP/model_base_caption_capfilt_large\.pth"):
        taggers.clip.caption(red(), "clip")
    with pytest.raises(Exception, match="model.onnx and selected_tags.csv"):
        taggers.wd14.caption(red(), "../etc")
