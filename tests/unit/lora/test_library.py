"""LoRA files: lazy recursive scan, A1111's file-minus-header hash cached by (path, mtime, size), header
metadata, alias lookup, browser cards, tag parsing and the infotext paste rename by hash."""
from __future__ import annotations

import hashlib
import json
import os
import struct
from types import SimpleNamespace

import pytest
import torch

from modules.extensions.api import ExtraNetworkParams, write_user_metadata
from tests.fixtures.loras import kohya_metadata, write_lora

PAIR = {"lora_unet_x_to_q.lora_down.weight": torch.ones(2, 4), "lora_unet_x_to_q.lora_up.weight": torch.ones(4, 2)}


def a1111_hash(path) -> str:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return hashlib.sha256(data[8 + length:]).hexdigest()[:12]


@pytest.fixture
def folders(tmp_path):
    lora, lyco = tmp_path / "Lora", tmp_path / "LyCORIS"
    write_lora(lora / "film.safetensors", PAIR, kohya_metadata("film_grain", tags={"a": {"red": 2}}))
    write_lora(lora / "people" / "anna.safetensors", {k: v * 2 for k, v in PAIR.items()})
    write_lora(lyco / "ink.safetensors", {k: v * 3 for k, v in PAIR.items()})
    return lora, lyco


def settings(**values):
    defaults = {"extra_networks_default_multiplier": 1.0, "lora_cache_size": 4, "lora_fuse": False,
                "lora_preferred_name": "Alias from file", "lora_add_hashes_to_infotext": True}
    defaults.update(values)
    return defaults.__getitem__


def test_scan_is_lazy_recursive_and_finds_stems_and_aliases(lora_pkg, folders, monkeypatch):
    files = lora_pkg["files"]
    library = files.LoraLibrary(folders)
    assert library._files is None  # nothing scanned at construction (setup runs in every app test)
    assert {f.stem for f in library.files()} == {"film", "anna", "ink"}
    assert library.find("FILM").stem == "film" and library.find("film_grain").stem == "film"
    assert library.find("anna").folder == "people" and library.find("nosuch") is None


def test_hash_is_a1111s_and_read_once_per_file_version(lora_pkg, folders):
    files = lora_pkg["files"]
    library = files.LoraLibrary(folders)
    film = library.find("film")
    assert library.shorthash(film) == a1111_hash(film.path)
    assert library.shorthash(library.find("film")) == a1111_hash(film.path) and library.hash_reads == 1
    write_lora(film.path, {k: v * 5 for k, v in PAIR.items()})  # edited: new size/mtime, new hash
    os.utime(film.path, ns=(film.mtime_ns + 10**9, film.mtime_ns + 10**9))
    edited = library.find("film")
    assert edited.key != film.key and library.shorthash(edited) == a1111_hash(film.path)
    assert library.hash_reads == 2


def test_cards_carry_alias_weight_activation_text_metadata_and_search_terms(lora_pkg, folders):
    files, network = lora_pkg["files"], lora_pkg["network"]
    lora_dir = folders[0]
    write_user_metadata(lora_dir / "film.safetensors", {"preferred weight": 0.6, "activation text": "grainy",
                                                        "negative text": "clean", "description": "old film"})
    (lora_dir / "film.preview.png").write_bytes(b"png")
    provider = network.LoraNetwork(files.LoraLibrary(folders), network.Settings(settings()))
    cards = {c.path.rsplit("/", 1)[-1]: c for c in provider.cards()}
    film, anna = cards["film.safetensors"], cards["anna.safetensors"]
    assert (film.name, film.prompt, film.negative_prompt) == ("film_grain", "<lora:film_grain:0.6> grainy", "clean")
    assert film.preview.endswith("film.preview.png") and film.description == "old film"
    assert film.metadata["ss_tag_frequency"] == {"a": {"red": 2}} and film.metadata["ss_base_model_version"] == "sd_v1"
    assert anna.prompt == "<lora:anna:1>" and "people" in anna.search_terms and "anna" in anna.search_terms
    assert set(film.sort_keys) == {"name", "path", "date_created", "date_modified"}
    provider.library.shorthash(provider.library.find("anna"))
    assert a1111_hash(lora_dir / "people" / "anna.safetensors") in provider.card(provider.library.find("anna")).search_terms
    by_file = network.LoraNetwork(files.LoraLibrary(folders), network.Settings(settings(
        lora_preferred_name="Filename", extra_networks_default_multiplier=0.8)))
    names = {c.name: c.prompt for c in by_file.cards()}
    assert names["film"] == "<lora:film:0.6> grainy" and names["ink"] == "<lora:ink:0.8>"


def test_refresh_sees_new_files(lora_pkg, folders):
    files = lora_pkg["files"]
    library = files.LoraLibrary(folders)
    assert library.find("late") is None
    write_lora(folders[0] / "late.safetensors", PAIR)
    assert library.find("late") is None  # scanned once, not per lookup
    library.refresh()
    assert library.find("late") is not None


@pytest.mark.parametrize("items, expected", [
    (["film"], ("film", 1.0, 1.0)), (["film", "0.5"], ("film", 0.5, 0.5)), (["film", "0.5", "0.2"], ("film", 0.5, 0.2)),
    (["film", "te=0", "unet=0.7"], ("film", 0.0, 0.7)), (["film", "1", "unet=0"], ("film", 1.0, 0.0)),
])
def test_tag_arguments(lora_pkg, items, expected):
    call = lora_pkg["network"].parse_call(ExtraNetworkParams.from_items(items), 1.0)
    assert (call.name, call.te, call.unet) == expected


def test_a_bad_weight_is_named(lora_pkg):
    with pytest.raises(ValueError, match="'strong' is not a number"):
        lora_pkg["network"].parse_call(ExtraNetworkParams.from_items(["film", "strong"]), 1.0)


def test_paste_renames_an_unknown_tag_whose_hash_is_a_local_file(lora_pkg, folders):
    files, network = lora_pkg["files"], lora_pkg["network"]
    provider = network.LoraNetwork(files.LoraLibrary(folders), network.Settings(settings(lora_preferred_name="Filename")))
    anna_hash = a1111_hash(folders[0] / "people" / "anna.safetensors")
    params = {"Prompt": "a girl <lora:anna_v2:0.7>, <lora:film:1> <lora:gone:1>",
              "Lora hashes": f"anna_v2: {anna_hash}, film: {a1111_hash(folders[0] / 'film.safetensors')}, gone: 0123456789ab"}
    provider.restore_names(params)
    assert params["Prompt"] == "a girl <lora:anna:0.7>, <lora:film:1> <lora:gone:1>"
    assert params["Lora hashes"].startswith(f"anna: {anna_hash}, film: ")
    untouched = {"Prompt": "<lora:film:1>", "Lora hashes": "film: 000000000000"}
    provider.restore_names(untouched)
    assert untouched == {"Prompt": "<lora:film:1>", "Lora hashes": "film: 000000000000"}


def test_setup_registers_and_reads_nothing(lora_pkg, tmp_path):
    import importlib

    from modules.extensions.api import ExtensionApi
    from modules.settings import Settings

    package = importlib.import_module("webui_extensions.lora")
    api = ExtensionApi("lora", tmp_path, settings=Settings(tmp_path / "config.json"),
                       paths=SimpleNamespace(models_dir=tmp_path / "models", data_dir=tmp_path),
                       flags=SimpleNamespace(lora_dir=None))
    package.setup(api)
    c = api.contributions
    provider = c.providers[0]
    assert (provider.kind, provider.name, provider.aliases) == ("extra_network", "lora", ("lyco",))
    assert provider.provider.title == "Lora" and provider.provider.library._files is None
    assert {r.path for r in c.routes} == {"/sdapi/v1/loras", "/sdapi/v1/refresh-loras"}
    assert [f.label for f in c.infotext_fields] == ["Lora hashes"]
    assert {s.key for s in c.settings} >= {"lora_preferred_name", "lora_cache_size", "lora_fuse"}
    assert provider.provider.library.roots == (tmp_path / "models" / "Lora", tmp_path / "models" / "LyCORIS")
    json.dumps(provider.provider.api_list())


def test_one_adapter_cache_per_model_shared_by_its_derived_pipelines(lora_pkg, folders):
    import gc

    files, network = lora_pkg["files"], lora_pkg["network"]
    provider = network.LoraNetwork(files.LoraLibrary(folders), network.Settings(settings()))
    unet = torch.nn.Linear(2, 2)
    base, img2img = SimpleNamespace(unet=unet), SimpleNamespace(unet=unet)  # from_pipe shares the modules
    other = SimpleNamespace(unet=torch.nn.Linear(2, 2))  # a switched-in model
    assert provider.cache_for(base) is provider.cache_for(img2img)
    assert provider.cache_for(other) is not provider.cache_for(base)
    del other
    gc.collect()
    assert len(provider._caches) == 1  # the old model's cache went with it
