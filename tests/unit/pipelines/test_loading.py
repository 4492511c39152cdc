"""Bundled configs and tokenizers, and loading checkpoints offline."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPTokenizer

from modules.paths import CONFIGS_DIR
from modules.pipelines.ldm_layout import export_ldm_state_dict, vae_to_ldm
from modules.pipelines.loading import (
    CheckpointError,
    architecture_from_yaml,
    detect_architecture,
    find_auto_vae,
    find_config_override,
    load_pipeline,
    load_vae,
    prediction_from_probe,
    read_state_dict,
)
from tests.fixtures.full_size import meta_pipeline_parts
from tests.fixtures.tiny_models import build_tiny_sd15_pipeline


def test_clip_tokenizer_ids_match_clip():
    tok = CLIPTokenizer.from_pretrained(CONFIGS_DIR / "tokenizers" / "clip")
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tok.model_max_length == 77 and len(tok) == 49408
    assert tok.pad_token_id == 49407


def test_openclip_tokenizer_pads_with_exclamation():
    tok = CLIPTokenizer.from_pretrained(CONFIGS_DIR / "tokenizers" / "clip-pad-excl")
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tok.pad_token == "!" and tok.pad_token_id == 0


def test_tiny_pipeline_is_deterministic_and_generates(tiny_sd15_pipe, no_network):
    again = build_tiny_sd15_pipeline(seed=0)
    for a, b in zip(tiny_sd15_pipe.unet.state_dict().values(), again.unet.state_dict().values()):
        assert torch.equal(a, b)
    out = tiny_sd15_pipe("a photo of a cat", num_inference_steps=2, output_type="np",
                         generator=torch.Generator().manual_seed(1)).images
    assert out.shape == (1, 64, 64, 3)


# Parameter counts of the released models (UNet, VAE, text encoder(s)): the configs must rebuild them exactly.
RELEASED_SIZES = {
    "sd15": (859_520_964, 83_653_863, 123_060_480),
    "sd15-inpaint": (859_535_364, 83_653_863, 123_060_480),
    "sd2": (865_910_724, 83_653_863, 340_387_840),
    "sd2-v": (865_910_724, 83_653_863, 340_387_840),
    "sd2-inpaint": (865_925_124, 83_653_863, 340_387_840),
    "sdxl-base": (2_567_463_684, 83_653_863, 123_060_480, 694_659_840),
    "sdxl-inpaint": (2_567_478_084, 83_653_863, 123_060_480, 694_659_840),
    "sdxl-refiner": (2_259_526_660, 83_653_863, 694_659_840),
}


@pytest.mark.parametrize("arch", sorted(RELEASED_SIZES))
def test_bundled_config_rebuilds_released_architecture(arch):
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folder = CONFIGS_DIR / arch
    index = json.loads((folder / "model_index.json").read_text())
    assert index.get("requires_safety_checker", False) is False
    assert index.get("safety_checker", [None])[0] is None and index["feature_extractor"][0] is None
    sizes = []
    with init_empty_weights():  # meta tensors: counts without allocating gigabytes
        for cls, name in ((UNet2DConditionModel, "unet"), (AutoencoderKL, "vae")):
            sizes.append(cls.from_config(cls.load_config(folder / name)).num_parameters())
        for name, cls in (("text_encoder", CLIPTextModel), ("text_encoder_2", CLIPTextModelWithProjection)):
            if index.get(name, [None])[0] is not None:
                model = cls(CLIPTextConfig.from_pretrained(folder / name))
                sizes.append(sum(p.numel() for p in model.parameters()))
    assert tuple(sizes) == RELEASED_SIZES[arch]
    sched = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    betas = (sched["beta_start"], sched["beta_end"], sched["beta_schedule"])
    assert betas == (0.00085, 0.012, "scaled_linear")
    assert sched["steps_offset"] == 1 and sched["timestep_spacing"] == "leading"
    assert sched["prediction_type"] == ("v_prediction" if arch == "sd2-v" else "epsilon")


# ---- loading the tiny checkpoints -------------------------------------------------------------------

LOAD_CASES = {  # fixture -> (architecture, pipeline class)
    "tiny_sd15_checkpoint": ("sd15", "StableDiffusionPipeline"),
    "tiny_sd15_ckpt": ("sd15", "StableDiffusionPipeline"),
    "tiny_sdxl_checkpoint": ("sdxl-base", "StableDiffusionXLPipeline"),
    "tiny_inpaint_checkpoint": ("sd15-inpaint", "StableDiffusionInpaintPipeline"),
    "tiny_sdxl_refiner_checkpoint": ("sdxl-refiner", "StableDiffusionXLImg2ImgPipeline"),
    "tiny_diffusers_folder": ("sd15", "StableDiffusionPipeline"),
}


def _run(pipe, task: str) -> np.ndarray:
    args = {"prompt": "a red cube", "num_inference_steps": 2, "height": 64, "width": 64, "output_type": "np",
                "generator": torch.Generator().manual_seed(7)}
    if task in ("inpaint", "img2img"):
        args |= {"image": Image.new("RGB", (64, 64), (90, 30, 200)), "strength": 1.0}
    if task == "inpaint":
        args |= {"mask_image": Image.new("L", (64, 64), 255)}
    return pipe(**args).images


@pytest.mark.parametrize("fixture", sorted(LOAD_CASES))
def test_each_fixture_loads_offline_and_generates(fixture, request, no_network):
    ckpt = request.getfixturevalue(fixture)
    pipe, info = load_pipeline(ckpt.path)
    pipe.set_progress_bar_config(disable=True)
    assert (info.architecture, type(pipe).__name__) == LOAD_CASES[fixture]
    assert info.pipeline_class == type(pipe).__name__ and info.prediction_type == "epsilon"
    assert pipe._webui_task == info.task
    image = _run(pipe, info.task)
    assert image.shape == (1, 64, 64, 3) and np.isfinite(image).all()


def test_single_file_gives_the_same_image_as_the_pipeline_it_came_from(tiny_sd15_checkpoint, tiny_sd15_pipe):
    pipe, info = load_pipeline(tiny_sd15_checkpoint.path)
    assert (info.file_format, info.config_source) == ("safetensors", "<stem>.config")
    assert np.array_equal(_run(pipe, "txt2img"), _run(tiny_sd15_pipe, "txt2img"))


def test_explicit_config_dir_and_bundled_mismatch(tiny_sd15_checkpoint, tmp_path, no_network):
    lonely = tmp_path / "renamed.safetensors"  # no sibling config: the bundled full-size one is chosen
    shutil.copy(tiny_sd15_checkpoint.path, lonely)
    _pipe, info = load_pipeline(lonely, config_dir=tiny_sd15_checkpoint.config_dir)
    assert info.config_source == "argument" and info.architecture == "sd15"
    with pytest.raises(CheckpointError, match=r"renamed\.safetensors: could not be loaded as sd15"):
        load_pipeline(lonely)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_damaged_files_raise_checkpoint_error_naming_the_file(damage, suffix, tiny_sd15_checkpoint,
                                                              tiny_sd15_ckpt, tmp_path):
    source = tiny_sd15_checkpoint.path if suffix == ".safetensors" else tiny_sd15_ckpt.path
    data = source.read_bytes()
    bad = tmp_path / f"broken-{damage}{suffix}"
    bad.write_bytes(b"\x00not a model\xff" * 64 if damage == "garbage" else data[: len(data) // 2])
    expected = rf"^broken-{damage}\{suffix}: not a readable checkpoint \(.+\)"
    with pytest.raises(CheckpointError, match=expected):
        load_pipeline(bad)


class _NotATensor:
    pass


def test_pickles_with_objects_are_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": _NotATensor()}, path)
    expected = r"^evil\.ckpt: not a readable checkpoint \(it pickles \S+_NotATensor"
    with pytest.raises(CheckpointError, match=expected):
        read_state_dict(path)


def test_random_keys_are_an_unknown_architecture(tmp_path):
    path = tmp_path / "mystery.safetensors"
    save_file({"foo.weight": torch.zeros(3, 3), "bar.bias": torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError, match=r"^mystery\.safetensors: unknown architecture"):
        load_pipeline(path)


def test_ckpt_state_dict_is_unwrapped(tiny_sd15_ckpt, tiny_sd15_checkpoint):
    a, b = read_state_dict(tiny_sd15_ckpt.path), read_state_dict(tiny_sd15_checkpoint.path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---- choosing configs ---------------------------------------------------------------------------

def _yaml(path, context_dim, parameterization=None, in_channels=4, sgm=False):
    net = "network_config" if sgm else "unet_config"
    lines = ["model:", "  target: ldm.models.diffusion.ddpm.LatentDiffusion", "  params:"]
    if parameterization:
        lines.append(f'    parameterization: "{parameterization}"')
    lines += [f"    {net}:", "      params:", f"        in_channels: {in_channels}",
              f"        context_dim: {context_dim}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_yaml_override_with_v_parameterization_picks_v_prediction(tmp_path):
    ckpt = tmp_path / "sd21.safetensors"
    ckpt.write_bytes(b"")
    _yaml(tmp_path / "sd21.yaml", 1024, parameterization="v")
    folder = find_config_override(ckpt)
    assert folder == CONFIGS_DIR / "sd2-v"
    sched = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert sched["prediction_type"] == "v_prediction"
    _yaml(tmp_path / "sd21.yaml", 1024)
    assert find_config_override(ckpt) == CONFIGS_DIR / "sd2"
    (tmp_path / "sd21.config").mkdir()
    (tmp_path / "sd21.config" / "model_index.json").write_text("{}")
    assert find_config_override(ckpt) == tmp_path / "sd21.config"  # a diffusers folder wins over the yaml


@pytest.mark.parametrize("facts, arch", [
    ({"context_dim": 768}, "sd15"), ({"context_dim": 768, "in_channels": 9}, "sd15-inpaint"),
    ({"context_dim": 1024, "in_channels": 9}, "sd2-inpaint"),
    ({"context_dim": 2048, "sgm": True}, "sdxl-base"),
    ({"context_dim": 2048, "in_channels": 9, "sgm": True}, "sdxl-inpaint"),
    ({"context_dim": 1280, "sgm": True}, "sdxl-refiner"),
])
def test_yaml_facts_map_to_bundled_folders(facts, arch, tmp_path):
    assert architecture_from_yaml(_yaml(tmp_path / "m.yaml", **facts)) == arch


def test_yaml_that_disagrees_with_the_keys_is_an_error(tiny_sd15_checkpoint, tmp_path):
    ckpt = tmp_path / "odd.safetensors"
    shutil.copy(tiny_sd15_checkpoint.path, ckpt)
    _yaml(tmp_path / "odd.yaml", 2048, sgm=True)
    with pytest.raises(CheckpointError, match=r"odd\.yaml describes sdxl-base, but odd\.safetensors is sd15"):
        load_pipeline(ckpt)


@pytest.mark.parametrize("arch", ["sd15", "sd15-inpaint", "sd2-v", "sd2-inpaint", "sdxl-base", "sdxl-inpaint",
                                  "sdxl-refiner"])
def test_detect_architecture_on_full_size_layouts(arch):
    parts = meta_pipeline_parts(CONFIGS_DIR / arch)
    assert detect_architecture(export_ldm_state_dict(parts)) == arch


def test_probe_tells_epsilon_from_v():
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    assert prediction_from_probe(noise, noise * 0.98 + 0.05) == "epsilon"
    assert prediction_from_probe(noise, 0.07 * noise - torch.randn(1, 4, 8, 8)) == "v_prediction"


# ---- VAEs ------------------------------------------------------------------------------------

def test_find_auto_vae_prefers_safetensors_next_to_the_checkpoint(tmp_path):
    ckpt = tmp_path / "model.safetensors"
    assert find_auto_vae(ckpt) is None
    (tmp_path / "model.vae.pt").write_bytes(b"x")
    assert find_auto_vae(ckpt) == tmp_path / "model.vae.pt"
    (tmp_path / "model.vae.safetensors").write_bytes(b"x")
    assert find_auto_vae(ckpt) == tmp_path / "model.vae.safetensors"
    vae_dir = tmp_path / "VAE"
    vae_dir.mkdir()
    (vae_dir / "other.vae.safetensors").write_bytes(b"x")
    assert find_auto_vae(tmp_path / "other.ckpt", vae_dir) == vae_dir / "other.vae.safetensors"


@pytest.mark.parametrize("layout", ["ldm.safetensors", "ldm-prefixed.pt", "diffusers.safetensors"])
def test_load_vae_files(layout, tiny_sd15_pipe, tmp_path, no_network):
    from tests.fixtures.tiny_models import tiny_vae

    torch.manual_seed(11)
    donor = tiny_vae()
    sd = donor.state_dict() if layout.startswith("diffusers") else vae_to_ldm(donor)
    if "prefixed" in layout:
        sd = {"first_stage_model." + k: v for k, v in sd.items()}
    path = tmp_path / f"vae-{layout}"
    if path.suffix == ".pt":
        torch.save({"state_dict": sd}, path)
    else:
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    vae = load_vae(path, like=tiny_sd15_pipe)
    got, want = vae.state_dict(), donor.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


def test_load_vae_rejects_a_unet_file(tiny_sd15_checkpoint, tiny_sd15_pipe, tmp_path):
    unet_only = {k: v for k, v in read_state_dict(tiny_sd15_checkpoint.path).items()
                 if k.startswith("model.diffusion_model.")}
    path = tmp_path / "not-a-vae.safetensors"
    save_file(unet_only, str(path))
    with pytest.raises(CheckpointError, match=r"^not-a-vae\.safetensors: not a VAE"):
        load_vae(path, like=tiny_sd15_pipe)
