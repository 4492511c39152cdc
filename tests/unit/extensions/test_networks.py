"""Extra-networks data helpers: user metadata beside the model, previews, training tags, file headers."""
from __future__ import annotations

import json

from safetensors.torch import save_file

from modules.extensions.networks import (
    base_model,
    find_preview,
    read_file_metadata,
    read_user_metadata,
    tag_frequency,
    user_metadata_path,
    write_user_metadata,
)


def test_tag_frequency_sums_datasets_and_sorts_by_count_then_name():
    header = {"ss_tag_frequency": json.dumps({
        "1_girl": {"1girl": 10, "smile": 3, " red hair": 2},
        "5_style": {"smile": 4, "red hair": 5, "bad": "x"},
    })}
    assert tag_frequency(header) == [("1girl", 10), ("red hair", 7), ("smile", 7)]
    # Parsed dicts (a provider may hand the header over decoded) read the same.
    assert tag_frequency({"ss_tag_frequency": json.loads(header["ss_tag_frequency"])})[0] == ("1girl", 10)
    assert tag_frequency({}) == [] and tag_frequency({"ss_tag_frequency": "{not json"}) == []


def test_base_model_prefers_the_users_choice_then_the_header():
    header = {"ss_sd_model_name": "v1-5-pruned.ckpt", "ss_base_model_version": "sd_v1"}
    assert base_model(header) == "v1-5-pruned.ckpt / sd_v1"
    assert base_model(header, {"sd version": "SDXL"}) == "SDXL"
    assert base_model(header, {"sd version": "Unknown"}) == "v1-5-pruned.ckpt / sd_v1"
    assert base_model({}) == ""


def test_user_metadata_is_merged_into_name_json_beside_the_model(tmp_path):
    model = tmp_path / "film.safetensors"
    model.write_bytes(b"")
    user_metadata_path(model).write_text(json.dumps({"notes": "old", "a1111 key": 1}))
    written = write_user_metadata(model, {"activation text": "grainy", "notes": "new"})
    assert written == tmp_path / "film.json"
    assert read_user_metadata(model) == {"notes": "new", "a1111 key": 1, "activation text": "grainy"}
    (tmp_path / "broken.json").write_text("[1, 2]")
    assert read_user_metadata(tmp_path / "broken.safetensors") == {}


def test_preview_prefers_name_preview_png_over_name_png(tmp_path):
    model = tmp_path / "film.v2.safetensors"
    assert find_preview(model) is None
    (tmp_path / "film.v2.png").write_bytes(b"png")
    assert find_preview(model) == tmp_path / "film.v2.png"
    (tmp_path / "film.v2.preview.png").write_bytes(b"png")
    assert find_preview(model) == tmp_path / "film.v2.preview.png"


def test_file_metadata_is_the_safetensors_header_only(tmp_path):
    import torch

    model = tmp_path / "net.safetensors"
    save_file({"w": torch.zeros(2)}, str(model), metadata={"ss_network_dim": "4"})
    assert read_file_metadata(model) == {"ss_network_dim": "4"}
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 16)
    assert read_file_metadata(tmp_path / "bad.safetensors") == {}
    assert read_file_metadata(tmp_path / "net.pt") == {}
