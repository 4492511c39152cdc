"""The built-in ControlNet extension in a real AppContext (tiny SD 1.5 single file): a unit changes the image,
weight 0 / disabled give the base image bit for bit, txt2img, img2img (its input as the control), hires fix,
infotext, and bad input as clear UserInputErrors. One context for the module."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from modules.generation.service import submit_generation
from modules.images.infotext import parse_infotext
from modules.types import GenerationRequest
from tests.fixtures.controlnets import write_controlnet_file, write_controlnet_folder
from tests.integration.conftest import WAIT, loaded_context

REQUEST = GenerationRequest(prompt="a red house", seed=7, width=64, height=64, steps=3, batch_size=1,
                            save_images=False)


def control_png() -> str:
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


CONTROL = control_png()


@pytest.fixture(scope="module")
def cn_ctx(tmp_path_factory, tiny_sd15_checkpoint, tiny_sd15_pipe, tiny_sdxl_pipe):
    root = tmp_path_factory.mktemp("controlnet-ctx")
    models = root / "ControlNet"
    write_controlnet_file(tiny_sd15_pipe.unet, models, "control_tiny_sd15", family="sd1", seed=1)
    write_controlnet_folder(tiny_sd15_pipe.unet, models, "control_tiny_folder", family="sd1", seed=2)
    write_controlnet_file(tiny_sdxl_pipe.unet, models, "control_tiny_sdxl", family="sdxl", seed=3)
    (models / "control_broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    ctx = loaded_context(root / "data", tiny_sd15_checkpoint, "--controlnet-dir", str(models))
    assert ctx.extensions.info("controlnet").status == "loaded", ctx.extensions.info("controlnet").error
    ctx.scanned_at_setup = len(runner_of(ctx).library._files)
    yield ctx
    ctx.close()


def runner_of(ctx):
    [hook] = [h for h in ctx.extensions.hooks.hooks("patch_pipeline") if h.extension == "controlnet"]
    return hook.fn.__self__


def unit(**changes) -> dict:
    return {"enabled": True, "module": "none", "model": "control_tiny_sd15", "weight": 1.0, "image": CONTROL,
            "resize_mode": "Crop and Resize", **changes}


def run(ctx, *units, **changes):
    extensions = {"controlnet": {"args": list(units)}} if units else {}
    job = submit_generation(ctx, REQUEST.with_changes(extensions=extensions, **changes))
    result = job.wait_result(WAIT)
    return job, result


def generate(ctx, *units, **changes):
    job, result = run(ctx, *units, **changes)
    assert job.state == "done", job.error
    return result


def failure(ctx, *units, **changes) -> str:
    job, _ = run(ctx, *units, **changes)
    assert job.state == "failed"
    return str(job.error)


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0]).astype(np.int16)


@pytest.fixture(scope="module")
def base(cn_ctx):
    return pixels(generate(cn_ctx))


def test_setup_registers_without_scanning_models_and_the_section_builds(cn_ctx):
    import gradio as gr

    assert cn_ctx.scanned_at_setup == 0  # setup is cheap: the folder is read on first use
    registry = cn_ctx.extensions.registry
    paths = {r.path for r in registry.routes()}
    assert {"/controlnet/version", "/controlnet/model_list", "/controlnet/settings",
            "/controlnet/module_list", "/controlnet/detect"} <= paths
    assert cn_ctx.settings.get("control_net_unit_count") == 3
    assert {f.label for f in registry.infotext_fields() if f.extension == "controlnet"} == {
        "ControlNet 0", "ControlNet 1", "ControlNet 2"}
    [section] = [s for s in registry.sections("txt2img") if s.extension == "controlnet"]
    with gr.Blocks():
        components = section.build(False)
    assert len(components) == 3 * 14


def test_a_unit_changes_the_image_and_weight_zero_or_disabled_is_the_base_bit_for_bit(cn_ctx, base):
    controlled = generate(cn_ctx, unit())
    assert np.abs(pixels(controlled) - base).max() > 10
    assert np.array_equal(pixels(generate(cn_ctx, unit(weight=0))), base)
    assert np.array_equal(pixels(generate(cn_ctx, unit(enabled=False))), base)
    assert np.array_equal(pixels(generate(cn_ctx, unit(model="None"))), base)
    # The hook is gone after the job: the next plain generation is the base image again.
    assert np.array_equal(pixels(generate(cn_ctx)), base)
    assert not cn_ctx.pipelines.current.pipe.unet._forward_pre_hooks


def test_infotext_names_the_unit_as_sd_webui_controlnet_and_parses_back(cn_ctx):
    from webui_extensions.controlnet import infotext

    result = generate(cn_ctx, unit(weight=0.5, guidance_end=0.8))
    parsed = parse_infotext(result.infotexts[0])
    text = parsed["ControlNet 0"]
    assert text.startswith("Module: none, Model: control_tiny_sd15 [")
    assert "Weight: 0.5, Resize Mode: Crop and Resize, Processor Res: 512" in text
    assert text.endswith("Guidance Start: 0, Guidance End: 0.8, Pixel Perfect: False, Control Mode: Balanced")
    values = infotext.parse_unit(text)
    assert values["weight"] == 0.5 and values["guidance_end"] == 0.8
    assert values["model"].startswith("control_tiny")


def test_control_modes_multi_units_and_guidance_range_each_differ(cn_ctx, base):
    one = pixels(generate(cn_ctx, unit()))
    seen = [one]
    for changed in (unit(control_mode="My prompt is more important"), unit(control_mode=2),
                    unit(guidance_start=0.5)):
        image = pixels(generate(cn_ctx, changed))
        assert all(not np.array_equal(image, other) for other in seen + [base])
        seen.append(image)
    two = pixels(generate(cn_ctx, unit(), unit(model="control_tiny_folder")))
    assert not np.array_equal(two, one)


def test_img2img_uses_its_input_and_hires_fix_runs_with_a_full_size_control(cn_ctx):
    init = Image.open(io.BytesIO(base64.b64decode(CONTROL))).convert("RGB")
    plain = pixels(generate(cn_ctx, mode="img2img", init_images=(init,), denoising_strength=0.8))
    controlled = generate(cn_ctx, unit(image=""), mode="img2img", init_images=(init,), denoising_strength=0.8)
    assert not np.array_equal(pixels(controlled), plain)
    hires = generate(cn_ctx, unit(), enable_hr=True, hr_scale=2.0, hr_upscaler="Latent",
                     denoising_strength=0.6)
    assert hires.images[0].size == (128, 128)


def test_bad_input_is_a_clear_user_error(cn_ctx):
    assert "ControlNet unit 0 has no image" in failure(cn_ctx, unit(image=""))
    message = failure(cn_ctx, unit(model="control_tiny_sdxl"))
    assert "made for SDXL" in message and "SD1 checkpoint" in message
    broken = failure(cn_ctx, unit(model="control_broken"))
    assert "control_broken.safetensors: not a readable model file" in broken
    assert "no model 'nothing_here'" in failure(cn_ctx, unit(model="nothing_here"))


def other_control_png() -> str:
    image = Image.new("RGB", (64, 64), (0, 0, 0))
    image.paste((255, 255, 255), (8, 8, 40, 56))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_control_images_steer_the_image_end_step_zero_is_the_base_and_inpaint_takes_control(cn_ctx, base):
    """Issue 13's acceptance: another control image gives another image; guidance end 0 means no control
    at all (bit for bit); inpaint runs with a unit and is steered by it."""
    one = pixels(generate(cn_ctx, unit()))
    other = pixels(generate(cn_ctx, unit(image=other_control_png())))
    assert np.abs(one - other).max() > 10
    assert np.array_equal(pixels(generate(cn_ctx, unit(guidance_end=0.0))), base)
    init = Image.new("RGB", (64, 64), (200, 40, 40))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    inpaint = dict(mode="img2img", init_images=(init,), mask=mask, denoising_strength=0.8)
    plain = pixels(generate(cn_ctx, **inpaint))
    assert not np.array_equal(pixels(generate(cn_ctx, unit(), **inpaint)), plain)


def test_a_preprocessor_without_its_weights_fails_the_job_before_it_runs(cn_ctx):
    """depth_midas without its annotator file: the job fails naming the file, no image made without control."""
    job, result = run(cn_ctx, unit(module="depth_midas"))
    assert job.state == "failed" and "dpt_hybrid-midas-501f0c75.pt" in str(job.error)
    assert result is None or not getattr(result, "images", None)
