"""The model library: LDM single files (.safetensors and pickled .pth) and diffusers folders load to the
weights that were saved; the list is named "stem [hash]" and filtered by family; a model loads once per
file version; broken, foreign or mismatched files are clear UserInputErrors."""
from __future__ import annotations

import os
import shutil

import pytest
import torch

from modules.paths import CONFIGS_DIR
from modules.types import UserInputError
from tests.fixtures.controlnets import controlnet_to_ldm, write_controlnet_file, write_controlnet_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_sd15_pipe, tiny_sdxl_pipe):
    root = tmp_path_factory.mktemp("ControlNet")
    made = {
        "sd1": write_controlnet_file(tiny_sd15_pipe.unet, root, "control_sd15_tiny", family="sd1", seed=1),
        "pth": write_controlnet_file(tiny_sd15_pipe.unet, root, "control_sd15_pickled", family="sd1", seed=2,
                                     suffix=".pth"),
        "folder": write_controlnet_folder(tiny_sd15_pipe.unet, root, "control_sd15_folder", family="sd1",
                                          seed=3),
        "sdxl": write_controlnet_file(tiny_sdxl_pipe.unet, root, "control_sdxl_tiny", family="sdxl", seed=4),
    }
    (root / "annotators").mkdir()
    (root / "annotators" / "body_pose_model.pth").write_bytes(b"not a controlnet")
    return root, made


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def library(cn, root):
    return cn.models.ControlNetLibrary(root, CONFIGS_DIR)


def test_ldm_files_and_folders_load_to_the_saved_weights(cn, folder, tiny_sd15_pipe, tiny_sdxl_pipe):
    root, made = folder
    lib = library(cn, root)
    sd1 = tiny_sd15_pipe.unet
    for key, unet in (("sd1", sd1), ("pth", sd1), ("folder", sd1), ("sdxl", tiny_sdxl_pipe.unet)):
        entry = lib.find(made[key].path.stem if made[key].path.is_file() else made[key].path.name)
        model = lib.load(entry, device="cpu", dtype=torch.float32, unet_config=dict(unet.config))
        assert same_weights(model, made[key].model), key
    assert any(k.startswith("control_model.input_hint_block.") for k in controlnet_to_ldm(made["sd1"].model))


def test_list_names_hashes_and_filters_by_family(cn, folder):
    root, made = folder
    lib = library(cn, root)
    titles = [f.title for f in lib.list()]
    assert titles[0] == "control_sd15_folder" and len(titles) == 4  # no .config folders, no annotators
    sd1 = lib.find("control_sd15_tiny")
    assert sd1.title == f"control_sd15_tiny [{cn.models.legacy_hash(made['sd1'].path)}]"
    assert lib.find(sd1.title) == sd1 and lib.find("control_sd15_tiny [00000000]") == sd1
    assert lib.find("None") is None and lib.find("nothing") is None
    assert [f.name for f in lib.list("sdxl")] == ["control_sdxl_tiny"]
    assert "control_sdxl_tiny" not in [f.name for f in lib.list("sd1")]


def test_loaded_once_per_file_version(cn, folder, tiny_sd15_pipe, tmp_path):
    root, made = folder
    shutil.copy(made["sd1"].path, tmp_path / "c.safetensors")
    shutil.copytree(made["sd1"].path.with_name("control_sd15_tiny.config"), tmp_path / "c.config")
    lib = library(cn, tmp_path)
    load = lambda: lib.load(lib.find("c"), device="cpu", dtype=torch.float32,  # noqa: E731
                            unet_config=dict(tiny_sd15_pipe.unet.config))
    first = load()
    assert load() is first
    stat = os.stat(tmp_path / "c.safetensors")
    os.utime(tmp_path / "c.safetensors", (stat.st_atime, stat.st_mtime + 5))
    assert load() is not first and lib.loaded_count() == 1


def test_bad_files_are_clear_errors(cn, folder, tiny_sd15_pipe, tmp_path):
    root, made = folder
    unet_config = dict(tiny_sd15_pipe.unet.config)
    lib = library(cn, root)
    foreign = "control_sdxl_tiny is made for SDXL and cannot be used with this SD1"
    with pytest.raises(UserInputError, match=foreign):
        lib.load(lib.find("control_sdxl_tiny"), device="cpu", dtype=torch.float32, unet_config=unet_config)
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    (tmp_path / "truncated.pth").write_bytes(made["pth"].path.read_bytes()[:5000])
    from safetensors.torch import save_file

    save_file({"model.diffusion_model.conv_in.weight": torch.zeros(1)},
              str(tmp_path / "checkpoint.safetensors"))
    shutil.copy(made["sd1"].path, tmp_path / "no_config.safetensors")  # tiny weights vs the real SD1.5 config
    lib = library(cn, tmp_path)
    for name, message in (("corrupt", "corrupt.safetensors: not a readable model file"),
                          ("truncated", "truncated.pth: not a readable model file"),
                          ("checkpoint", "checkpoint.safetensors: not a ControlNet"),
                          ("no_config", "no_config.safetensors: its weights do not fit controlnet-sd15")):
        with pytest.raises(UserInputError, match=message):
            lib.load(lib.find(name), device="cpu", dtype=torch.float32, unet_config=unet_config)


def test_bundled_configs_have_the_real_sizes(cn):
    import json

    for name, cross, params in (("controlnet-sd15", 768, 361), ("controlnet-sd2", 1024, 364),
                                ("controlnet-sdxl", 2048, 1251)):
        config = json.loads((CONFIGS_DIR / name / "config.json").read_text())
        assert config["cross_attention_dim"] == cross
        from diffusers import ControlNetModel

        with torch.device("meta"):
            model = ControlNetModel.from_config(config)
        assert round(sum(p.numel() for p in model.parameters()) / 1e6) == params


def test_the_sections_model_list_follows_the_loaded_checkpoints_family(cn, folder, tmp_path):
    """The UI dropdown lists only ControlNets of the loaded family (api.loaded_model, API 1.2); all when none."""
    import importlib
    from types import SimpleNamespace

    from modules.extensions.api import ExtensionApi
    from modules.extensions.loader import package_name
    from modules.flags import Flags
    from modules.paths import BUILTIN_EXTENSIONS_DIR, Paths
    from modules.settings import Settings

    root, _ = folder
    ui = importlib.import_module(f"{package_name('controlnet')}.ui")
    pipelines = SimpleNamespace(current=None)
    api = ExtensionApi("controlnet", BUILTIN_EXTENSIONS_DIR / "controlnet", settings=Settings(tmp_path / "c.json"),
                       paths=Paths.from_dirs(data_dir=tmp_path), flags=Flags(), pipelines=pipelines)
    services = ui.services_from_api(api, library(cn, root))
    assert len(services.models()) == 5  # None + all four: nothing loaded
    pipelines.current = SimpleNamespace(family="sdxl", architecture="sdxl-base", checkpoint=None)
    assert api.loaded_model().family == "sdxl"
    assert [m.split(" [")[0] for m in services.models()] == ["None", "control_sdxl_tiny"]
    pipelines.current = SimpleNamespace(family="sd1", architecture="sd15", checkpoint=None)
    assert "control_sdxl_tiny" not in " ".join(services.models()) and len(services.models()) == 4
    pipelines.current = SimpleNamespace(family="sd1", architecture="sd2-v", checkpoint=None)
    assert api.loaded_model().family == "sd2" and services.models() == ["None"]
