"""Captioning a folder with the tiny WD14 tagger: the written .txt/.caption files exactly, per mode."""
from __future__ import annotations

import pytest
from PIL import Image

from tests.fixtures.taggers import dataset_tools, write_tiny_tagger

captions = dataset_tools("captions")
catalog = dataset_tools("taggers.catalog")
TagOptions = dataset_tools("taggers.options").TagOptions


@pytest.fixture(scope="module")
def taggers(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    write_tiny_tagger(models / "interrogators" / "tiny-wd14")
    return catalog.Taggers(models)


def folder_with_images(root):
    root.mkdir()
    Image.new("RGB", (64, 64), (255, 0, 0)).save(root / "a.png")
    Image.new("RGB", (64, 64), (0, 0, 255)).save(root / "b.jpg")
    (root / "broken.png").write_bytes(b"not a png")
    (root / "notes.md").write_text("not an image")
    return root


def run(taggers, folder, **kwargs):
    options = kwargs.pop("options", TagOptions())
    request = captions.CaptionRequest(folder, tagger="tiny-wd14", options=options, **kwargs)
    return captions.caption_folder(request, lambda image: taggers.wd14.caption(image, "tiny-wd14", options))


def test_captions_written_beside_images_and_broken_image_reported(taggers, tmp_path):
    folder = folder_with_images(tmp_path / "set")
    report = run(taggers, folder)
    assert (folder / "a.txt").read_text() == r"red theme, hatsune miku, 1girl, solo, ^_^, star \(symbol\)"
    assert (folder / "b.txt").read_text() == r"blue sky, hatsune miku, 1girl, solo, ^_^, star \(symbol\)"
    assert report.written == ["a.txt", "b.txt"]
    assert [name for name, _ in report.skipped] == ["broken.png"]
    assert not (folder / "broken.txt").exists() and not (folder / "notes.txt").exists()


def test_thresholds_and_exclude_change_the_file_exactly(taggers, tmp_path):
    folder = folder_with_images(tmp_path / "set")
    options = TagOptions(general_threshold=0.55, character_threshold=0.95, exclude=("solo",),
                         additional=("sks person",), escape_brackets=False)
    run(taggers, folder, options=options)
    assert (folder / "a.txt").read_text() == "sks person, red theme, 1girl"


def test_modes_and_caption_extension(taggers, tmp_path):
    folder = folder_with_images(tmp_path / "set")
    (folder / "a.caption").write_text("old tag, 1girl")
    (folder / "b.caption").write_text("keep me")
    options = TagOptions(general_threshold=0.7, character_threshold=1.0)
    run(taggers, folder, options=options, mode="append", extension=".caption")
    assert (folder / "a.caption").read_text() == "old tag, 1girl, red theme"
    report = run(taggers, folder, options=options, mode="skip", extension=".caption")
    assert report.written == [] and (folder / "b.caption").read_text() == "keep me, blue sky, 1girl"
    run(taggers, folder, options=options, mode="overwrite", extension="caption")
    assert (folder / "b.caption").read_text() == "blue sky, 1girl"
    assert not list(folder.glob("*.txt"))


def test_filename_as_caption(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "00012-red_dress, smile.png")
    request = captions.CaptionRequest(folder, options=TagOptions(additional=("style",)))
    captions.caption_folder(request, caption=None)
    assert (folder / "00012-red_dress, smile.txt").read_text() == "style, red dress, smile"


def test_bad_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="overwrite, append, skip"):
        captions.CaptionRequest(tmp_path, mode="merge")


def test_progress_is_reported_per_image(taggers, tmp_path):
    folder = folder_with_images(tmp_path / "set")
    seen = []
    request = captions.CaptionRequest(folder)
    captions.caption_folder(request, caption=None, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
