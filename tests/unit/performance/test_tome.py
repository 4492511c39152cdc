"""Token merging (A1111's token_merging_ratio settings, through tomesd): ratio 0 leaves the image exactly as
it was, 0.5 changes it and says so in the infotext, and the UNet is unpatched after every pass."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modules.devices import MemoryPolicy
from modules.generation.runtime import GenerationEnv
from modules.generation.txt2img import generate_txt2img
from modules.images.infotext import parse_infotext
from modules.performance import tome
from modules.pipelines.manager import LoadedModel, model_family
from modules.pipelines.registry import CheckpointInfo
from modules.settings import Settings
from modules.types import GenerationRequest

REQUEST = GenerationRequest(prompt="a red house", width=64, height=64, steps=2, seed=3, sampler_name="Euler")


@pytest.fixture(scope="module")
def model(tiny_sd15_pipe) -> LoadedModel:
    info = CheckpointInfo(path=Path("/models/tiny.safetensors"), name="tiny.safetensors", model_name="tiny")
    return LoadedModel(info, tiny_sd15_pipe, model_family(tiny_sd15_pipe), "sd15", MemoryPolicy())


def env_with(tmp_path, **values) -> GenerationEnv:
    settings = Settings(tmp_path / "config.json")
    settings.update(values, save=False)
    return GenerationEnv(settings=settings)


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0], dtype=np.int16)


def block_classes(unet) -> set[str]:
    return {type(m).__name__ for m in unet.modules() if "TransformerBlock" in type(m).__name__
            or type(m).__name__ == "ToMeBlock"}


def test_ratio_zero_gives_todays_image_exactly_and_writes_no_infotext(model, tmp_path):
    today = generate_txt2img(model, REQUEST)
    zero = generate_txt2img(model, REQUEST, env=env_with(tmp_path, token_merging_ratio=0.0))
    assert np.array_equal(pixels(today), pixels(zero))
    assert "Token merging" not in zero.infotexts[0]


def test_ratio_half_changes_the_image_writes_the_infotext_and_unpatches_the_unet(model, tmp_path):
    before = block_classes(model.pipe.unet)
    today = generate_txt2img(model, REQUEST)
    merged = generate_txt2img(model, REQUEST, env=env_with(tmp_path, token_merging_ratio=0.5))
    assert not np.array_equal(pixels(today), pixels(merged))
    assert str(parse_infotext(merged.infotexts[0])["Token merging ratio"]) == "0.5"
    assert block_classes(model.pipe.unet) == before == {"BasicTransformerBlock"}  # tomesd.remove_patch ran
    again = generate_txt2img(model, REQUEST)
    assert np.array_equal(pixels(today), pixels(again))  # ratio back to 0: untouched


def test_the_patch_is_on_during_the_pass_only():
    seen = []

    class Pipe:
        from tests.fixtures.tiny_models import _sd1_unet
        unet = _sd1_unet()

    with tome.token_merging(Pipe, 0.5):
        seen.append(block_classes(Pipe.unet))
    assert seen == [{"ToMeBlock"}] and block_classes(Pipe.unet) == {"BasicTransformerBlock"}


def test_pass_ratios_follow_a1111s_override_rule():
    values = {"token_merging_ratio": 0.3, "token_merging_ratio_hr": 0.0, "token_merging_ratio_img2img": 0.6}
    assert tome.pass_ratio(values.get, "txt2img") == 0.3
    assert tome.pass_ratio(values.get, "hires") == 0.3  # 0 = the main ratio
    assert tome.pass_ratio(values.get, "img2img") == 0.6 and tome.pass_ratio(values.get, "inpaint") == 0.6
    values["token_merging_ratio_hr"] = 0.5
    assert tome.pass_ratio(values.get, "hires") == 0.5
    assert tome.infotext(0.3, 0.5) == {"Token merging ratio": 0.3, "Token merging ratio hr": 0.5}
    assert tome.infotext(0.0, None) == {}


def test_merging_happens_at_the_first_level_with_attention(tiny_sd15_pipe, tiny_sdxl_pipe):
    # The tiny UNets have their first attention one level down (as SDXL); SD 1.5 has it at the top (1).
    assert tome.merge_downsample(tiny_sd15_pipe.unet) == 2
    assert tome.merge_downsample(tiny_sdxl_pipe.unet) == 2
