"""Every bundled config folder exercised for real: a tiny model of each architecture saved as an A1111 single
file, loaded by key detection, and generated from through our own txt2img / img2img / inpaint code.

The tiny models carry each bundled folder's scheduler and model_index unchanged (only the model sizes are
small; `test_tiny_models_mirror_the_bundled_configs` keeps them faithful), so what is exercised is the
bundled pipeline class, scheduler class and prediction type of each architecture.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from modules.devices import MemoryPolicy
from modules.generation.img2img import generate_img2img
from modules.generation.txt2img import generate_txt2img
from modules.paths import CONFIGS_DIR
from modules.pipelines.loading import ARCHITECTURES, load_pipeline, read_state_dict
from modules.pipelines.manager import LoadedModel, model_family
from modules.pipelines.registry import CheckpointInfo
from modules.samplers import SAMPLERS, build_scheduler, model_scheduler_config, resolve_sampler
from modules.types import GenerationRequest
from tests.fixtures.checkpoints import BUILDERS, write_single_file

# Building KDPM2 schedulers warns once per training step about a NumPy 2 deprecation inside diffusers.
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")

TXT2IMG = GenerationRequest(prompt="a red house", negative_prompt="blurry", width=64, height=64, steps=3,
                            sampler_name="Euler", seed=5)
INPAINT = ("sd15-inpaint", "sd2-inpaint", "sdxl-inpaint")
# Structural facts of each component config the tiny models must share with the bundled folder.
UNET_FACTS = ("in_channels", "out_channels", "use_linear_projection", "addition_embed_type")
VAE_FACTS = ("scaling_factor", "force_upcast", "latent_channels")
TEXT_FACTS = ("hidden_act",)


def test_every_bundled_architecture_has_a_tiny_builder():
    assert set(BUILDERS) == set(ARCHITECTURES)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """arch -> TinyCheckpoint, one A1111 single file per bundled config folder."""
    folder = tmp_path_factory.mktemp("every-config")
    return {arch: write_single_file(arch, folder) for arch in ARCHITECTURES}


@pytest.fixture(scope="module")
def loaded(checkpoints):
    """arch -> (pipeline, LoadedModelInfo) from load_pipeline(path): the architecture comes from the keys."""
    out = {}
    for arch, ckpt in checkpoints.items():
        pipe, info = load_pipeline(ckpt.path)
        pipe.set_progress_bar_config(disable=True)
        out[arch] = (pipe, info)
    return out


def as_model(pipe, info) -> LoadedModel:
    entry = CheckpointInfo(path=info.path, name=info.path.name, model_name=info.path.stem,
                           hash="0123456789abcdef")
    return LoadedModel(entry, pipe, model_family(pipe), info.architecture, MemoryPolicy())


def _json(path: Path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if k != "_diffusers_version"}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_tiny_models_mirror_the_bundled_configs(arch, checkpoints):
    bundled, tiny = CONFIGS_DIR / arch, checkpoints[arch].config_dir
    # every setting the bundled files spell out (the tiny ones also list the defaults)
    for name in ("model_index.json", "scheduler/scheduler_config.json"):
        want, got = _json(bundled / name), _json(tiny / name)
        assert {k: got.get(k) for k in want} == want, name
    for part, facts in (("unet", UNET_FACTS), ("vae", VAE_FACTS), ("text_encoder", TEXT_FACTS),
                        ("text_encoder_2", TEXT_FACTS)):
        if not (bundled / part).is_dir():
            assert not (tiny / part).is_dir(), part
            continue
        want, got = _json(bundled / part / "config.json"), _json(tiny / part / "config.json")
        # (None and False both mean "off" in diffusers configs)
        assert {k: got.get(k) or False for k in facts} == {k: want.get(k) or False for k in facts}, part


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_each_single_file_loads_by_its_keys_with_its_own_weights(arch, checkpoints, loaded):
    pipe, info = loaded[arch]
    bundled = json.loads((CONFIGS_DIR / arch / "model_index.json").read_text())
    assert info.architecture == arch and info.file_format == "safetensors"
    assert type(pipe).__name__ == bundled["_class_name"] == info.pipeline_class
    assert type(pipe.scheduler).__name__ == bundled["scheduler"][1]
    source = BUILDERS[arch](seed=0)
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        want = getattr(source, name, None)
        if want is None:
            continue
        got = getattr(pipe, name).state_dict()
        for key, tensor in want.state_dict().items():
            if not key.endswith("position_ids"):
                assert torch.equal(got[key], tensor), f"{name}.{key}"
    assert set(read_state_dict(checkpoints[arch].path)) >= {"model.diffusion_model.input_blocks.0.0.weight"}


@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES if a != "sdxl-refiner"])
def test_each_architecture_generates_from_text(arch, loaded):
    result = generate_txt2img(as_model(*loaded[arch]), TXT2IMG)
    image = np.asarray(result.images[0], dtype=np.int16)
    assert result.images[0].size == (64, 64) and image.std() > 1  # a picture, not a flat square


def test_the_refiner_generates_from_an_image(loaded):
    start = Image.new("RGB", (64, 64), (90, 30, 200))
    request = TXT2IMG.with_changes(mode="img2img", init_images=(start,), denoising_strength=0.6, steps=4)
    result = generate_img2img(as_model(*loaded["sdxl-refiner"]), request)
    assert result.images[0].size == (64, 64)
    assert np.abs(np.asarray(result.images[0], dtype=np.int16) - np.asarray(start, dtype=np.int16)).mean() > 1


# ---- SD 2.x: epsilon and v-prediction --------------------------------------------------------------

def test_prediction_type_comes_from_the_bundled_scheduler(loaded):
    assert (loaded["sd2"][1].prediction_type, loaded["sd2"][0].scheduler.config.prediction_type) == \
        ("epsilon", "epsilon")
    assert (loaded["sd2-v"][1].prediction_type, loaded["sd2-v"][0].scheduler.config.prediction_type) == \
        ("v_prediction", "v_prediction")


@pytest.mark.parametrize("sampler", [s.name for s in SAMPLERS])
def test_every_sampler_keeps_v_prediction(sampler, loaded):
    pipe = loaded["sd2-v"][0]
    spec, schedule, _ = resolve_sampler(sampler)
    built = build_scheduler(model_scheduler_config(pipe.scheduler), spec, schedule, seed=1)
    assert built.config.prediction_type == "v_prediction"


def test_v_prediction_reaches_the_scheduler_that_samples(loaded):
    """The same weights as sd2 and sd2-v: only the prediction type differs, and it must change the image."""
    seen: list[str] = []

    def spy(pipe, prompts, negatives, **kwargs):
        from modules.generation.prompting import default_conditioning_factory

        cond = default_conditioning_factory()(pipe, prompts, negatives, **kwargs)
        inner = cond.step_callback

        def callback(p, i, t, tensors):
            seen.append(p.scheduler.config.prediction_type)
            return inner(p, i, t, tensors) if inner is not None else {}

        cond.step_callback = callback
        return cond

    images = {}
    for arch in ("sd2", "sd2-v"):
        request = TXT2IMG.with_changes(sampler_name="DPM++ 2M", scheduler="Karras")
        images[arch] = np.asarray(generate_txt2img(as_model(*loaded[arch]), request,
                                                   conditioning_factory=spy).images[0], dtype=np.int16)
    assert seen == ["epsilon"] * 3 + ["v_prediction"] * 3
    assert np.abs(images["sd2"] - images["sd2-v"]).mean() > 1


# ---- inpainting models: 9-channel UNet input -----------------------------------------------------

def _unet_inputs(pipe) -> tuple[list[torch.Tensor], object]:
    seen: list[torch.Tensor] = []
    handle = pipe.unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    return seen, handle


@pytest.mark.parametrize("arch", INPAINT)
def test_inpainting_models_read_the_mask_and_the_masked_image(arch, loaded):
    pipe, info = loaded[arch]
    model = as_model(pipe, info)
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    y, x = np.mgrid[0:64, 0:64]
    photo = np.stack([x * 4, y * 4, (x + y) * 2], axis=2).astype(np.uint8)
    inside_changed, outside_changed = photo.copy(), photo.copy()
    inside_changed[24:40, 24:40] = 255 - inside_changed[24:40, 24:40]
    outside_changed[0:8, 0:8] = 255 - outside_changed[0:8, 0:8]
    base = TXT2IMG.with_changes(mode="img2img", mask=mask, mask_blur=0, inpainting_fill=1,
                                denoising_strength=1.0, steps=2)

    conditions = []
    for picture in (photo, inside_changed, outside_changed):
        seen, handle = _unet_inputs(pipe)
        try:
            result = generate_img2img(model, base.with_changes(init_images=(Image.fromarray(picture),)))
        finally:
            handle.remove()
        assert result.images[0].size == (64, 64)
        assert seen and all(s.shape[1] == 9 for s in seen)  # noisy latents + mask + masked-image latents
        # the extra channels are the same at every step: conditioning, not something sampled
        assert all(torch.equal(s[:, 4:], seen[0][:, 4:]) for s in seen)
        conditions.append(seen[0][:, 4:])

    latent_mask = F.interpolate(torch.from_numpy(np.asarray(mask) / 255.0)[None, None].float(), size=(32, 32))
    first = conditions[0]
    assert torch.equal(first[:, :1], latent_mask.expand(first.shape[0], 1, 32, 32).to(first.dtype))
    # what is under the mask is hidden from the model; what is around it is not
    assert torch.equal(conditions[1][:, 1:], first[:, 1:])
    assert not torch.equal(conditions[2][:, 1:], first[:, 1:])
