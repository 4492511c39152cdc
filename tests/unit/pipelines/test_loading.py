"""Bundled configs and tokenizers, and loading checkpoints offline."""
from __future__ import annotations

import json

import pytest
import torch
from transformers import CLIPTokenizer

from modules.paths import CONFIGS_DIR
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
    assert (sched["beta_start"], sched["beta_end"], sched["beta_schedule"]) == (0.00085, 0.012, "scaled_linear")
    assert sched["steps_offset"] == 1 and sched["timestep_spacing"] == "leading"
    assert sched["prediction_type"] == ("v_prediction" if arch == "sd2-v" else "epsilon")
