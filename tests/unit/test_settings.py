from __future__ import annotations

import json

import pytest

from modules.settings import Settings, SettingsError, SettingsSaveError


def test_values_persist_across_instances(tmp_path):
    path = tmp_path / "config.json"
    s = Settings(path)
    assert s.update({"CLIP_stop_at_last_layers": "2", "samples_format": "jpg"}) == [
        "CLIP_stop_at_last_layers", "samples_format"]
    again = Settings(path)
    assert again.get("CLIP_stop_at_last_layers") == 2 and again.get("samples_format") == "jpg"


def test_bad_value_names_the_key_and_changes_nothing(tmp_path):
    s = Settings(tmp_path / "config.json")
    with pytest.raises(SettingsError, match="CLIP_stop_at_last_layers"):
        s.update({"samples_format": "jpg", "CLIP_stop_at_last_layers": "many"})
    assert s.get("samples_format") == "png"
    with pytest.raises(SettingsError, match="unknown setting 'no_such_key'"):
        s.update({"no_such_key": 1})
    with pytest.raises(SettingsError, match="not one of"):
        s.update({"samples_format": "bmp"})


def test_corrupt_file_is_kept_aside_and_defaults_used(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    s = Settings(path)
    assert s.get("samples_format") == "png"
    assert (tmp_path / "config.json.bad").read_text() == "{not json"
    assert "unreadable" in s.load_warning


def test_atomic_write_leaves_no_temp_files(tmp_path):
    s = Settings(tmp_path / "config.json")
    for i in range(5):
        s.update({"jpeg_quality": 50 + i})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
    assert json.loads((tmp_path / "config.json").read_text())["jpeg_quality"] == 54


def test_listeners_hear_changes(tmp_path):
    s = Settings(tmp_path / "config.json")
    heard = []
    s.on_change(lambda k, v: heard.append((k, v)))
    s.update({"sd_vae": "None"})
    s.update({"sd_vae": "None"})
    assert heard == [("sd_vae", "None")]


def test_a_failed_write_raises_a_clear_error_and_leaves_memory_as_on_disk(tmp_path):
    """Disk full or a read-only folder: the file is written first, so memory never disagrees with it."""
    path = tmp_path / "config.json"
    s = Settings(path)
    s.update({"jpeg_quality": 70})
    heard = []
    s.on_change(lambda k, v: heard.append((k, v)))
    path.unlink()
    path.mkdir()  # a directory where the file goes: the atomic rename fails, as on a full disk
    with pytest.raises(SettingsSaveError, match="config.json") as failure:
        s.update({"jpeg_quality": 90, "samples_format": "jpg"})
    assert isinstance(failure.value, SettingsError)  # the UI shows SettingsErrors verbatim
    assert "nothing was changed" in str(failure.value)
    assert (s.get("jpeg_quality"), s.get("samples_format")) == (70, "png")
    assert heard == []  # listeners (model switch, preview rate) heard nothing that did not happen
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temp file left behind
    path.rmdir()
    assert s.update({"jpeg_quality": 90}) == ["jpeg_quality"]
    assert Settings(path).get("jpeg_quality") == 90
