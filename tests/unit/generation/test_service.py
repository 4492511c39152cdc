"""submit_generation/run_generation on a real AppContext over tiny single-file checkpoints: saving with the
parameters chunk, per-job settings and model, errors through the job queue."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from modules.context import build_context, load_initial_model
from modules.flags import parse_flags
from modules.generation.service import run_generation, submit_generation
from modules.images.infotext import infotext_to_request_fields, parse_infotext
from modules.types import GenerationRequest, UserInputError

ROOT = Path(__file__).resolve().parents[3]
WAIT = 120  # seconds; a safety net against hangs only


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, tiny_sd15_checkpoint, tiny_inpaint_checkpoint):
    data = tmp_path_factory.mktemp("webui-data")
    flags = parse_flags(["--data-dir", str(data), "--ckpt-dir", str(tiny_sd15_checkpoint.path.parent),
                         "--ckpt", str(tiny_sd15_checkpoint.path), "--no-download-sd-model"])
    context = build_context(flags, ROOT)
    load_initial_model(context)
    assert context.model_error is None
    yield context
    context.close()


REQUEST = GenerationRequest(prompt="a lighthouse, (stormy sea:1.2)", negative_prompt="blurry, lowres",
                            seed=77, width=64, height=64, steps=3, sampler_name="DPM++ 2M",
                            scheduler="Karras", cfg_scale=6.5, batch_size=2)


def test_saved_png_carries_parameters_that_parse_back_to_the_request(ctx):
    job = submit_generation(ctx, REQUEST)
    result = job.wait_result(WAIT)
    assert job.state == "done", job.error
    images, grid = result.saved_paths[:2], result.saved_paths[2]
    assert [Path(p).name.split("-", 1)[1] for p in images] == ["77.png", "78.png"]
    assert re.search(r"outputs/txt2img-images/\d{4}-\d{2}-\d{2}/\d{5}-77\.png$", images[0])
    assert "txt2img-grids" in grid and result.grid is not None

    parsed = parse_infotext(Image.open(images[1]).info["parameters"])
    fields = infotext_to_request_fields(parsed)
    names = ("prompt", "negative_prompt", "steps", "sampler_name", "scheduler", "cfg_scale", "width",
             "height")
    for name in names:
        assert fields[name] == getattr(REQUEST, name), name
    assert fields["seed"] == 78
    assert parsed["Model"] == "tiny-sd15" and len(parsed["Model hash"]) == 10


def test_override_settings_apply_to_this_job_only(ctx):
    request = GenerationRequest(prompt="x", seed=1, width=64, height=64, steps=2,
                                override_settings={"samples_save": False, "CLIP_stop_at_last_layers": 2,
                                                   "some_extension_key": 31337})
    result = run_generation(ctx, request)
    assert result.saved_paths == []
    assert any("some_extension_key" in w for w in result.warnings)  # unknown to us: ignored, said so
    assert "Clip skip: 2" in result.infotexts[0]
    assert ctx.settings.get("samples_save") is True and ctx.settings.get("CLIP_stop_at_last_layers") == 1


def test_a_named_checkpoint_is_used_for_the_job_and_the_previous_one_comes_back(ctx):
    before = ctx.pipelines.current.checkpoint.path
    request = GenerationRequest(prompt="x", seed=2, width=64, height=64, steps=2, save_images=False,
                                sd_model_checkpoint="tiny-sd15-inpaint")
    result = run_generation(ctx, request)
    assert "Model: tiny-sd15-inpaint" in result.infotexts[0]  # txt2img on a 9-channel inpainting UNet
    assert ctx.pipelines.current.checkpoint.path == before


@pytest.mark.parametrize("changes, field", [
    ({"sampler_name": "Euler z"}, "sampler_name"),
    ({"sd_model_checkpoint": "no-such-model"}, "sd_model_checkpoint"),
    ({"override_settings": {"samples_save": "maybe"}}, "override_settings"),
])
def test_errors_reach_the_job_as_one_user_input_error(ctx, changes, field):
    job = submit_generation(ctx, REQUEST.with_changes(**changes))
    job.wait(WAIT)
    assert job.state == "failed"
    assert isinstance(job.exception, UserInputError) and job.exception.field == field


def test_textual_inversion_from_the_embeddings_folder_reaches_the_image(ctx):
    """An embedding file dropped into embeddings/ changes the image and is named in TI hashes."""
    import numpy as np
    import torch
    from safetensors.torch import save_file

    width = ctx.pipelines.current.pipe.text_encoder.config.hidden_size
    save_file({"emb_params": torch.randn(2, width, generator=torch.Generator().manual_seed(3)) * 5},
              str(ctx.paths.embeddings_dir / "glowstyle.safetensors"))
    ctx.embeddings.reload()
    base = GenerationRequest(prompt="a house", seed=5, width=64, height=64, steps=2, save_images=False)
    plain = run_generation(ctx, base)
    styled = run_generation(ctx, base.with_changes(prompt="a house, glowstyle"))
    word = run_generation(ctx, base.with_changes(prompt="a house, glowstyles"))  # not the trigger
    assert "TI hashes" in styled.infotexts[0] and "glowstyle" in styled.infotexts[0]
    assert "TI hashes" not in word.infotexts[0]
    assert not np.array_equal(np.asarray(plain.images[0]), np.asarray(styled.images[0]))
