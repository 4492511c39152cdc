"""Preprocess runs (extensions/dataset_tools/preprocess.py): report of skipped files, layout, captions, limits."""
from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modules.extensions.loader import import_extension_package
from modules.types import UserInputError

ROOT = Path(__file__).resolve().parents[3]
import_extension_package("dataset_tools", ROOT / "extensions" / "dataset_tools")
pre = importlib.import_module("webui_extensions.dataset_tools.preprocess")
ops = importlib.import_module("webui_extensions.dataset_tools.preprocess_ops")
paths = importlib.import_module("webui_extensions.dataset_tools.preprocess_paths")


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    """Two good images, a corrupt PNG, a text file, a 10x10 image, and a caption beside one good image."""
    src = tmp_path / "src"
    src.mkdir()
    noise(96, 64, 1).save(src / "a_red_car.png")
    noise(64, 80, 2).save(src / "b.jpg")
    (src / "b.txt").write_text("existing tags")
    (src / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    (src / "notes.txt").write_text("not an image")
    noise(10, 10, 3).save(src / "tiny.png")
    return src


class Recorder:
    def __init__(self, stop_after: int | None = None):
        self.totals, self.steps, self.texts = [], [], []
        self.stop_after = stop_after
        self._textinfo = ""

    @property
    def textinfo(self):
        return self._textinfo

    @textinfo.setter
    def textinfo(self, text):
        self._textinfo = text
        self.texts.append(text)

    def set_total(self, steps_total, images_total=1):
        self.totals.append(steps_total)

    def step(self, step_index):
        self.steps.append(step_index)

    @property
    def interrupted(self):
        return self.stop_after is not None and len(self.steps) >= self.stop_after


def test_bad_files_are_skipped_and_reported_and_the_rest_processed(mixed_folder, tmp_path):
    progress = Recorder()
    options = pre.PreprocessOptions(mixed_folder, tmp_path / "out", width=64, height=64)
    report = pre.run_preprocess(options, progress)
    reasons = {Path(s.file).name: s.reason for s in report.skipped}
    assert set(reasons) == {"corrupt.png", "notes.txt", "tiny.png"}
    assert "unreadable" in reasons["corrupt.png"] or "not an image" in reasons["corrupt.png"]
    assert reasons["notes.txt"] == "not an image file"
    assert reasons["tiny.png"].startswith("too small: 10x10")
    assert report.processed == 2 and report.total == 5  # b.txt is b.jpg's caption, not a file to report
    written = sorted(Path(p).name for p in report.written)
    assert len(written) == 2 and written[0].endswith("a_red_car.png")
    for p in report.written:
        assert Image.open(p).size == (64, 64)
    assert progress.totals == [5] and progress.steps == list(range(5))
    assert progress.texts[-1].startswith("Preprocess 5/5")
    assert sorted(p.name for p in mixed_folder.iterdir()) == ["a_red_car.png", "b.jpg", "b.txt", "corrupt.png",
                                                             "notes.txt", "tiny.png"]  # source untouched
    assert report.to_json()["skipped"][0].keys() == {"file", "reason"}


def test_flip_kohya_layout_and_captions(mixed_folder, tmp_path):
    options = pre.PreprocessOptions(mixed_folder, tmp_path / "out", width=64, height=64, flip=True, repeats=10,
                                    name="car", caption_filename=True, existing_caption="prepend")
    report = pre.run_preprocess(options)
    out = tmp_path / "out" / "10_car"
    assert Path(report.output_dir) == out.resolve()
    assert len(report.written) == 4  # two images, each with its mirror
    first, mirrored = (Image.open(p) for p in sorted(report.written)[:2])
    assert np.array_equal(np.asarray(first)[:, ::-1], np.asarray(mirrored))
    captions = {Path(p).name: Path(p).read_text() for p in report.captions}
    assert captions["00000-0-a_red_car.txt"] == "a red car"
    assert captions["00000-1-a_red_car.txt"] == "a red car"
    assert captions["00001-0-b.txt"] == "existing tags, b"


def test_captioner_output_is_written_and_its_failure_is_a_warning(mixed_folder, tmp_path):
    calls = []

    def tagger(image):
        calls.append(image.size)
        if len(calls) == 2:
            raise RuntimeError("model hiccup")
        return "1girl, solo"

    options = pre.PreprocessOptions(mixed_folder, tmp_path / "out", width=64, height=64, caption_filename=True)
    report = pre.run_preprocess(options, captioner=tagger)
    captions = {Path(p).name: Path(p).read_text() for p in report.captions}
    assert captions == {"00000-0-a_red_car.txt": "1girl, solo", "00001-0-b.txt": "b"}  # falls back to the name
    assert calls == [(64, 64), (64, 64)]
    assert report.warnings and "model hiccup" in report.warnings[0]


@pytest.mark.parametrize("dest", ["same", "inside", "kohya-is-source"])
def test_never_writes_into_the_source(tmp_path, dest):
    src = tmp_path / "data" / "10_face"
    src.mkdir(parents=True)
    noise(64, 64).save(src / "x.png")
    destination, repeats = {"same": (src, 0), "inside": (src / "out", 0),
                            "kohya-is-source": (tmp_path / "data", 10)}[dest]
    options = pre.PreprocessOptions(src, destination, width=64, height=64, repeats=repeats, name="face")
    with pytest.raises(UserInputError, match="never writes into its source"):
        pre.run_preprocess(options)
    assert [p.name for p in src.iterdir()] == ["x.png"]


def test_interrupt_stops_between_files_and_keeps_what_was_done(mixed_folder, tmp_path):
    report = pre.run_preprocess(pre.PreprocessOptions(mixed_folder, tmp_path / "out", width=64, height=64),
                                Recorder(stop_after=1))
    assert report.interrupted and report.processed == 1 and len(report.written) == 1
    assert report.skipped == []


def test_split_tiles_overlap_and_reach_both_ends():
    image = Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (64, 1)))  # a 256x64 ramp
    tiles = ops.split_tiles(image.convert("RGB"), (64, 64), ops.SplitOptions(threshold=0.5, overlap=0.2))
    assert tiles is not None and len(tiles) == 5  # (256 - 64) / 51 steps -> 5 tiles of 64
    firsts = [np.asarray(t)[0, 0, 0] for t in tiles]
    assert firsts[0] == 0 and np.asarray(tiles[-1])[0, -1, 0] == 255
    assert all(b - a < 64 for a, b in zip(firsts, firsts[1:]))  # neighbours overlap
    # Not oversized (4:3 for a square target with threshold 0.5): no split.
    assert ops.split_tiles(noise(80, 60), (64, 64), ops.SplitOptions()) is None


def test_crop_modes_give_the_target_size(tmp_path):
    image = noise(200, 100)
    for mode in ops.CROP_MODES:
        for item in ops.process_image(image, (64, 64), mode):
            assert item.image.size == ((64, 64) if mode != "auto-size" else item.image.size)
    fill = ops.process_image(image, (64, 64), "none", resize_mode="fill")[0].image
    assert fill.size == (64, 64)
    assert len(ops.process_image(image, (64, 64), "split")) == 3


def test_auto_size_matches_the_aspect_ratio():
    opts = ops.AutoSizeOptions(min_side=384, max_side=768, max_area=640 * 640)
    assert ops.auto_size((1600, 900), opts) == (768, 448)  # 1.71 vs 1.78: the largest within 10 %
    assert ops.auto_size((1000, 1000), opts) == (640, 640)
    assert ops.auto_size((1000, 1000), replace(opts, objective="error")) == (640, 640)
    w, h = ops.auto_size((900, 1600), opts)
    assert w % 64 == 0 and h % 64 == 0 and h > w


def test_focal_debug_goes_beside_the_outputs_never_among_them(tmp_path):
    skimage_data = pytest.importorskip("skimage.data")
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(skimage_data.astronaut()).resize((256, 256)).save(src / "astronaut.png")
    options = pre.PreprocessOptions(src, tmp_path / "out", width=96, height=192, crop="focal", focal_debug=True)
    report = pre.run_preprocess(options)
    assert [Path(p).parent.name for p in report.debug] == [pre.DEBUG_FOLDER]
    assert [Path(p).parent for p in report.written] == [tmp_path / "out"]
    assert Image.open(report.written[0]).size == (96, 192)


def test_bad_options_are_refused_before_any_write(tmp_path, mixed_folder):
    for bad in (dict(width=4), dict(crop="zoom"), dict(existing_caption="merge"), dict(repeats=-1)):
        with pytest.raises(ValueError):
            pre.run_preprocess(replace(pre.PreprocessOptions(mixed_folder, tmp_path / "out"), **bad))
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserInputError, match="plain folder name"):
        paths.kohya_folder(tmp_path, 5, "../evil")


def test_listen_confines_folders_to_the_data_dir(tmp_path):
    data = tmp_path / "data"
    assert paths.resolve_folder("train/in", data, confined=True, field="source_dir") == (data / "train/in").resolve()
    with pytest.raises(paths.FolderNotAllowed, match="--enable-insecure-extension-access"):
        paths.resolve_folder(str(tmp_path / "elsewhere"), data, confined=True, field="source_dir")
    with pytest.raises(paths.FolderNotAllowed):
        paths.resolve_folder("../elsewhere", data, confined=True, field="source_dir")
    assert paths.resolve_folder(str(tmp_path / "elsewhere"), data, confined=False, field="x") == tmp_path / "elsewhere"
    assert paths.confined(True, False) and not paths.confined(True, True) and not paths.confined(False, False)
