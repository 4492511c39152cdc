"""Checkpoint registry: scanning, A1111 names and titles, lazy cached hashes, lookup by every key, VAE list."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from modules.paths import Paths
from modules.pipelines import hashes
from modules.pipelines.registry import CheckpointRegistry, find_vae, list_vae_files, vae_choices


def write(path, size: int = 0x120000, seed: int = 0) -> bytes:
    """A file of `size` deterministic bytes (past 1 MiB so the legacy hash reads real data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = hashlib.sha256(f"{seed}".encode()).digest()
    data = (block * (size // len(block) + 1))[:size]
    path.write_bytes(data)
    return data


@pytest.fixture
def paths(tmp_path):
    p = Paths.from_dirs(tmp_path / "data")
    ckpts = p.ckpt_dirs[0]
    write(ckpts / "base.safetensors", seed=1)
    write(ckpts / "sub" / "deeper" / "model10.ckpt", seed=2)
    write(ckpts / "sub" / "model2.safetensors", seed=3)
    write(ckpts / "notes.txt", size=10)
    write(ckpts / "embedding.pt", size=10)
    # config overrides next to a checkpoint: skipped, even though they hold a model-looking file
    write(ckpts / "base.config" / "unet" / "diffusion_pytorch_model.safetensors", size=10)
    (ckpts / "base.config" / "model_index.json").write_text("{}")
    # a diffusers folder: listed once, never descended into
    folder = ckpts / "pipes" / "my-diffusers"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    write(folder / "unet" / "diffusion_pytorch_model.safetensors", size=10)
    write(ckpts / ".hidden" / "secret.safetensors", size=10)
    return p


@pytest.fixture
def hash_calls(monkeypatch):
    """Count real sha256 computations (the real function still runs)."""
    calls = []
    real = hashes.sha256_file

    def counting(path):
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(hashes, "sha256_file", counting)
    return calls


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_scan_finds_files_and_folders_with_a1111_names(paths):
    reg = CheckpointRegistry(paths)
    assert [i.name for i in reg.list()] == [
        "base.safetensors", "pipes/my-diffusers", "sub/deeper/model10.ckpt", "sub/model2.safetensors",
    ]
    info = reg.get("sub/deeper/model10.ckpt")
    assert info.model_name == "model10" and info.api_model_name == "sub_deeper_model10"
    assert info.path == paths.ckpt_dirs[0] / "sub" / "deeper" / "model10.ckpt"
    folder = reg.get("pipes/my-diffusers")
    assert folder.is_folder and folder.model_name == "my-diffusers" and folder.hash is None


def test_hashing_is_lazy_and_titles_gain_the_hash(paths, hash_calls):
    reg = CheckpointRegistry(paths)
    info = reg.get("base.safetensors")
    assert hash_calls == [] and info.hash is None and info.title == "base.safetensors"
    hashed = reg.ensure_hash(info)
    assert hashed.hash == sha(info.path) and hashed.shorthash == hashed.hash[:10]
    assert hashed.title == f"base.safetensors [{hashed.hash[:10]}]"
    assert reg.title_of(info) == hashed.title  # an old info object still gets the current title
    assert len(hash_calls) == 1
    reg.ensure_hash(info)
    assert len(hash_calls) == 1


def test_cache_survives_a_restart_and_a_changed_file_rehashes(paths, hash_calls):
    reg = CheckpointRegistry(paths)
    info = reg.ensure_hash(reg.get("sub/model2.safetensors"))
    cache = json.loads(paths.hash_cache_file.read_text())
    assert cache["hashes"]["checkpoint/sub/model2.safetensors"]["sha256"] == info.hash

    again = CheckpointRegistry(paths)
    assert again.get("sub/model2.safetensors").hash == info.hash  # known at scan, from the cache
    assert len(hash_calls) == 1

    write(info.path, seed=99)
    os.utime(info.path, (1_000_000_000, 1_000_000_000))  # a different mtime, whatever the clock says
    again.refresh()
    changed = again.get("sub/model2.safetensors")
    assert changed.hash is None
    assert again.ensure_hash(changed).hash == sha(info.path) != info.hash
    assert len(hash_calls) == 2


def test_corrupt_cache_is_ignored_with_a_warning_and_rewritten(paths, hash_calls, caplog):
    paths.hash_cache_file.parent.mkdir(parents=True, exist_ok=True)
    paths.hash_cache_file.write_text("{not json")
    reg = CheckpointRegistry(paths)
    assert "hash cache ignored" in reg.cache.load_warning
    assert "hash cache ignored" in caplog.text
    reg.ensure_hash(reg.get("base.safetensors"))
    assert "checkpoint/base.safetensors" in json.loads(paths.hash_cache_file.read_text())["hashes"]


def test_cache_keeps_other_sections_and_leaves_no_temp_files(paths):
    paths.hash_cache_file.parent.mkdir(parents=True, exist_ok=True)
    paths.hash_cache_file.write_text(json.dumps({"hashes-addnet": {"lora/x": {"mtime": 1, "sha256": "ab"}}}))
    reg = CheckpointRegistry(paths)
    reg.ensure_hash(reg.get("base.safetensors"))
    data = json.loads(paths.hash_cache_file.read_text())
    assert data["hashes-addnet"] == {"lora/x": {"mtime": 1, "sha256": "ab"}}
    assert [p.name for p in paths.hash_cache_file.parent.iterdir() if p.suffix == ".tmp"] == []


def test_find_by_every_key(paths):
    reg = CheckpointRegistry(paths)
    info = reg.ensure_hash(reg.get("sub/model2.safetensors"))
    old = hashlib.sha256(info.path.read_bytes()[0x100000:0x110000]).hexdigest()[:8]
    assert reg.legacy_hash(info) == old
    for query in (info.title, info.name, info.model_name, info.api_model_name, info.hash, info.hash[:10], old,
                  str(info.path), "sub/model2.safetensors [0123456789]", "model2.safe"):
        assert reg.find(query) == info, query
    assert reg.find("pipes/my-diffusers").is_folder
    assert reg.find("nothing like it") is None and reg.find("") is None


def test_find_by_hash_computes_only_when_asked(paths, hash_calls):
    reg = CheckpointRegistry(paths)
    wanted = sha(paths.ckpt_dirs[0] / "sub" / "deeper" / "model10.ckpt")
    assert reg.find(wanted[:10]) is None and hash_calls == []
    found = reg.find(wanted[:10], compute_hashes=True)
    assert found.name == "sub/deeper/model10.ckpt" and found.hash == wanted


def test_ckpt_file_outside_the_folders_and_extra_dir(tmp_path):
    extra_dir, outside = tmp_path / "more", tmp_path / "elsewhere" / "single.safetensors"
    write(extra_dir / "x" / "extra.safetensors", seed=5)
    write(outside, seed=6)
    reg = CheckpointRegistry(Paths.from_dirs(tmp_path / "data", ckpt_dir=extra_dir, ckpt=outside))
    assert [i.name for i in reg.list()] == ["single.safetensors", "x/extra.safetensors"]
    assert reg.find(str(outside)).name == "single.safetensors"


def test_missing_folders_give_an_empty_list(tmp_path):
    assert CheckpointRegistry(Paths.from_dirs(tmp_path / "none")).list() == []


def test_vae_list(tmp_path):
    vae_dir, ckpt_dir = tmp_path / "VAE", tmp_path / "Stable-diffusion"
    for name in ("b.safetensors", "sub/a.pt", "c.ckpt", "readme.txt", ".trash/old.pt"):
        write(vae_dir / name, size=4)
    write(ckpt_dir / "model.vae.safetensors", size=4)
    write(ckpt_dir / "model.safetensors", size=4)
    files = list_vae_files(vae_dir, [ckpt_dir])
    assert [v.name for v in files] == ["a.pt", "b.safetensors", "c.ckpt", "model.vae.safetensors"]
    assert vae_choices(files) == ["Automatic", "None", "a.pt", "b.safetensors", "c.ckpt", "model.vae.safetensors"]
    assert find_vae(files, "b.safetensors").path == vae_dir / "b.safetensors"
    assert find_vae(files, "Automatic") is None
    assert list_vae_files(tmp_path / "missing") == []


def test_symlink_loop_is_walked_once(paths):
    ckpts = paths.ckpt_dirs[0]
    (ckpts / "sub" / "loop").symlink_to(ckpts, target_is_directory=True)
    names = [i.name for i in CheckpointRegistry(paths).list()]
    assert names.count("base.safetensors") == 1 and len(names) == 4
