"""Tag editor: frequencies, bulk edits, per-image edits, backups and undo (byte-identical), atomic writes."""
from __future__ import annotations

import os

import pytest
from PIL import Image

from tests.fixtures.taggers import dataset_tools

editor = dataset_tools("tag_editor")
files = dataset_tools("caption_files")


def make_set(root, n=20):
    root.mkdir()
    Image.new("RGB", (4, 4)).save(root / "base.png")
    for i in range(n):
        Image.new("RGB", (4, 4)).save(root / f"img{i:02d}.png")
        # varied bytes: CRLF, no spaces, a trailing newline, BOM-less UTF-8
        text = f"1girl,{'red hair' if i % 2 else 'blue hair'} , smile{os.linesep if i % 3 else ''}"
        (root / f"img{i:02d}.txt").write_bytes(text.replace("\n", "\r\n" if i % 4 == 1 else "\n").encode())
    return root


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_frequencies(tmp_path):
    dataset = editor.load_dataset(make_set(tmp_path / "set"))
    assert dataset.frequencies() == [("1girl", 20), ("smile", 20), ("blue hair", 10), ("red hair", 10)]
    assert dataset.entry("base.png").tags == ()


def test_replace_across_20_captions_then_undo_is_byte_identical(tmp_path):
    folder = make_set(tmp_path / "set")
    before = snapshot(folder)
    dataset = editor.load_dataset(folder)
    changes = editor.apply_edit(dataset, editor.BulkEdit("replace", ("smile",), replace_with="grin"))
    assert len(changes) == 20
    backup = editor.save(dataset, changes)
    assert backup and editor.backups(folder) == [backup]
    assert (folder / "img01.txt").read_text() == "1girl, red hair, grin"
    assert editor.load_dataset(folder).frequencies()[0:2] == [("1girl", 20), ("grin", 20)]
    restored = editor.undo(folder)
    assert len(restored) == 20
    assert snapshot(folder) == before
    assert editor.backups(folder) == []
    with pytest.raises(LookupError, match="nothing to undo"):
        editor.undo(folder)


def test_bulk_actions():
    tags = ("a", "b", "c")
    edit = editor.BulkEdit
    assert editor.edit_tags(tags, edit("add", ("d", "a"))) == ("a", "b", "c", "d")
    assert editor.edit_tags(tags, edit("add", ("d",), front=True)) == ("d", "a", "b", "c")
    assert editor.edit_tags(tags, edit("remove", ("b", "x"))) == ("a", "c")
    assert editor.edit_tags(tags, edit("replace", ("b",), replace_with="c")) == ("a", "c")
    assert editor.edit_tags(tags, edit("replace", ("b",))) == ("a", "c")
    assert editor.edit_tags(tags, edit("move_to_front", ("c", "x", "b"))) == ("c", "b", "a")
    with pytest.raises(ValueError, match="no tags"):
        edit("remove", (" ",))


def test_per_image_edit_creates_caption_and_undo_removes_it(tmp_path):
    folder = make_set(tmp_path / "set", n=2)
    before = snapshot(folder)
    dataset = editor.load_dataset(folder)
    editor.save(dataset, {"base.png": ("new", "tags"), "img00.png": ("1girl",)})
    assert (folder / "base.txt").read_text() == "new, tags"
    assert editor.save(editor.load_dataset(folder), {"img00.png": ("1girl",)}) is None  # unchanged: no backup
    editor.undo(folder)
    assert snapshot(folder) == before


def test_bulk_edit_on_chosen_images_only(tmp_path):
    folder = make_set(tmp_path / "set", n=3)
    dataset = editor.load_dataset(folder)
    assert list(editor.apply_edit(dataset, editor.BulkEdit("remove", ("smile",), images=("img01.png",)))) == \
        ["img01.png"]


def test_failed_write_keeps_the_old_caption(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    path.write_text("old")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        files.write_caption(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary file left behind


def test_a_save_that_fails_half_way_leaves_every_old_caption(tmp_path, monkeypatch):
    import tempfile

    folder = make_set(tmp_path / "set", n=5)
    before = snapshot(folder)
    dataset = editor.load_dataset(folder)
    changes = editor.apply_edit(dataset, editor.BulkEdit("remove", ("smile",)))
    real, calls = tempfile.mkstemp, []

    def third_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", third_fails)
    with pytest.raises(OSError, match="disk full"):
        editor.save(dataset, changes)
    monkeypatch.undo()
    assert snapshot(folder) == before  # not two new captions and three old ones
    assert editor.backups(folder) == []  # and no backup of a save that did not happen
