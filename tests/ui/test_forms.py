"""forms.py without a browser: widget values -> GenerationRequest, infotext -> widget values, editor masks,
and the ui-config.json defaults store. Plain functions on real PIL images; no server."""
from __future__ import annotations

import json

import pytest
from PIL import Image, ImageDraw

from modules.images.infotext import build_generation_params, format_infotext
from modules.types import GenerationRequest, UserInputError
from webui.ui import forms
from webui.ui.registry import UiDefaults

TXT2IMG = {"prompt": "a cat", "negative_prompt": "dog", "sampler_name": "Euler a", "scheduler": "Karras",
           "steps": 12.0, "width": 320.0, "height": 256.0, "n_iter": 2.0, "batch_size": 1.0, "cfg_scale": 6.5,
           "seed": 42.0, "subseed_show": False, "subseed": 7.0, "subseed_strength": 0.5,
           "seed_resize_from_w": 0.0, "seed_resize_from_h": 0.0, "enable_hr": False, "hr_cfg_scale": 7.0,
           "refiner_enable": False, "refiner_checkpoint": "x", "styles": ["s1"], "script_name": "None"}


def test_txt2img_values_become_a_typed_request():
    r = forms.request_from_values("txt2img", TXT2IMG)
    assert (r.mode, r.prompt, r.negative_prompt, r.sampler_name, r.scheduler) == (
        "txt2img", "a cat", "dog", "Euler a", "Karras")
    assert (r.steps, r.width, r.height, r.n_iter, r.cfg_scale, r.seed) == (12, 320, 256, 2, 6.5, 42)
    assert isinstance(r.steps, int) and isinstance(r.seed, int)
    assert r.styles == ("s1",) and r.script_name == ""
    # Closed "Extra" row, closed refiner and hires: their values do not leak into the request.
    assert (r.subseed, r.subseed_strength, r.seed_resize_from_w) == (-1, 0.0, -1)
    assert r.refiner_checkpoint == "" and r.hr_cfg_scale is None


def test_open_extra_row_and_refiner_count():
    r = forms.request_from_values("txt2img", {**TXT2IMG, "subseed_show": True, "seed_resize_from_w": 512.0,
                                              "refiner_enable": True})
    assert (r.subseed, r.subseed_strength, r.seed_resize_from_w, r.seed_resize_from_h) == (7, 0.5, 512, -1)
    assert r.refiner_checkpoint == "x"
    with pytest.raises(UserInputError, match="refiner_checkpoint"):
        forms.request_from_values("txt2img", {**TXT2IMG, "refiner_enable": True, "refiner_checkpoint": ""})


def test_an_emptied_number_box_means_the_default_and_text_is_named():
    assert forms.request_from_values("txt2img", {**TXT2IMG, "steps": None}).steps == GenerationRequest().steps
    with pytest.raises(UserInputError, match="cfg_scale"):
        forms.request_from_values("txt2img", {**TXT2IMG, "cfg_scale": "lots"})


def test_img2img_upload_and_resize_by(tmp_path):
    path = tmp_path / "in.png"
    Image.new("RGB", (100, 60), "red").save(path)
    values = {**TXT2IMG, "img2img_mode": "img2img", "init_img": str(path), "resize_mode": "Crop and resize",
              "denoising_strength": 0.4, "resize_by": True, "scale_by": 2.0}
    r = forms.request_from_values("img2img", values)
    assert r.mode == "img2img" and r.init_images[0].size == (100, 60) and r.mask is None
    assert (r.resize_mode, r.denoising_strength) == (1, 0.4)
    assert (r.width, r.height) == (200, 120)  # 100x60 by 2, in multiples of 8


def test_img2img_without_or_with_a_broken_image_names_init_images(tmp_path):
    with pytest.raises(UserInputError, match="init_images"):
        forms.request_from_values("img2img", {**TXT2IMG, "img2img_mode": "img2img", "init_img": None})
    broken = tmp_path / "broken.png"
    good = tmp_path / "good.png"
    Image.new("RGB", (64, 64), "blue").save(good)
    broken.write_bytes(good.read_bytes()[:60])
    with pytest.raises(UserInputError, match="init_images: could not read the image"):
        forms.request_from_values("img2img", {**TXT2IMG, "img2img_mode": "img2img", "init_img": str(broken)})


def test_brush_layers_become_the_mask():
    background = Image.new("RGBA", (64, 64), (10, 20, 30, 255))
    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(layer).rectangle((8, 8, 23, 23), fill=(255, 255, 255, 255))
    editor = {"background": background, "layers": [layer], "composite": background}
    values = {**TXT2IMG, "img2img_mode": "inpaint", "init_img_with_mask": editor, "mask_mode": "Inpaint not masked",
              "inpainting_fill": "latent noise", "inpaint_area": "Only masked", "mask_blur": 2.0}
    r = forms.request_from_values("img2img", values)
    assert r.mask.mode == "L" and r.mask.getpixel((10, 10)) == 255 and r.mask.getpixel((40, 40)) == 0
    assert (r.inpainting_mask_invert, r.inpainting_fill, r.inpaint_full_res, r.mask_blur) == (1, 2, True, 2)
    assert r.init_images[0].mode == "RGB"
    with pytest.raises(UserInputError, match="mask: the mask is empty"):
        forms.request_from_values("img2img", {**values, "init_img_with_mask": {**editor, "layers": []}})


def test_infotext_round_trips_through_the_form():
    request = GenerationRequest(prompt="a lighthouse", negative_prompt="fog", steps=4, sampler_name="Euler a",
                                scheduler="Automatic", cfg_scale=5.0, seed=4321, width=64, height=72,
                                subseed=9, subseed_strength=0.25)
    text = format_infotext(request.prompt, request.negative_prompt,
                           build_generation_params(request, seed=request.seed, subseed=request.subseed,
                                                   model_name="m", model_hash="0123456789"))
    values = forms.values_from_infotext(text)
    assert forms.has_parameters(text) and not forms.has_parameters("just a prompt: with a colon")
    assert values["subseed_show"] is True and values["refiner_enable"] is False
    again = forms.request_from_values("txt2img", {**TXT2IMG, **values, "styles": []})
    for field in ("prompt", "negative_prompt", "steps", "sampler_name", "cfg_scale", "seed", "width", "height",
                  "subseed", "subseed_strength"):
        assert getattr(again, field) == getattr(request, field), field


def test_updates_skip_fields_the_text_does_not_carry():
    updates = forms.updates_from_infotext("a cat\nSteps: 5, Sampler: Euler, Seed: 3, Size: 64x64",
                                          ["prompt", "steps", "mask_blur"])
    assert updates[0]["value"] == "a cat" and updates[1]["value"] == 5
    assert not isinstance(updates[2], dict) or "value" not in updates[2]


def test_ui_defaults_store_and_page_load_values(tmp_path):
    import gradio as gr

    path = tmp_path / "ui-config.json"
    path.write_text(json.dumps({"txt2img/Sampling steps/value": 33, "txt2img/Sampling steps/maximum": 200,
                                "txt2img/Sampling method/value": "no such sampler"}))
    defaults = UiDefaults(path)
    with gr.Blocks():
        steps = defaults.make(gr.Slider, "txt2img", "Sampling steps", minimum=1, maximum=150, value=20)
        sampler = defaults.make(gr.Dropdown, "txt2img", "Sampling method", choices=["Euler"], value="Euler")
    assert (steps.value, steps.maximum, sampler.value) == (33, 200, "Euler")
    assert all(not isinstance(v, int) for v in defaults.current_values())  # unchanged file: nothing to push
    assert defaults.save_values({"txt2img/Sampling steps": 40}) == ["txt2img/Sampling steps"]
    assert json.loads(path.read_text())["txt2img/Sampling steps/value"] == 40
    assert defaults.current_values()[0] == 40  # a page load after the change shows it


def test_a_broken_ui_config_is_ignored_with_a_warning(tmp_path):
    path = tmp_path / "ui-config.json"
    path.write_text("{not json")
    defaults = UiDefaults(path)
    assert defaults.stored == {} and "unreadable" in defaults.warning


def test_batch_from_directory_pairs_masks_and_reads_png_info(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    from webui.ui.components import batch_dir

    images, masks = tmp_path / "in", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    info = PngInfo()
    info.add_text("parameters", "a boat\nSteps: 7, Sampler: Euler, Seed: 5, Size: 64x64")
    Image.new("RGB", (64, 64)).save(images / "a.png", pnginfo=info)
    Image.new("RGB", (64, 64)).save(images / "b.jpg")
    (images / "notes.txt").write_text("not an image")
    Image.new("L", (64, 64), 255).save(masks / "b.png")
    found = batch_dir.list_images(images)
    assert [p.name for p in found] == ["a.png", "b.jpg"]

    base = {**TXT2IMG, "batch_use_png_info": True}
    first, second = (batch_dir.file_values(base, p, masks) for p in found)
    assert (first["img2img_mode"], first["prompt"], first["steps"], first["seed"]) == ("img2img", "a boat", 7, 5)
    assert second["img2img_mode"] == "inpaint_upload" and second["init_mask_inpaint"].endswith("b.png")
    assert second["prompt"] == "a cat"  # no PNG info in b.jpg: the form's prompt stays
    with pytest.raises(UserInputError, match="batch_input_dir"):
        batch_dir.list_images(tmp_path / "missing")


def test_extension_fields_paste_back_from_infotext():
    """An extension's infotext label fills its section widget on paste (values typed as the widget wants)."""
    from webui.ui import forms

    text = "a cat\nSteps: 3, Seed: 1, Hello: Hi there, Strength: 0.25, Enabled: False"
    labels = {"alwayson:hello-extension:1": "Hello", "alwayson:x:0": "Strength", "alwayson:x:1": "Enabled",
              "alwayson:x:2": "Missing"}
    values = forms.values_from_infotext(text, labels)
    assert values["alwayson:hello-extension:1"] == "Hi there"
    assert values["alwayson:x:0"] == 0.25 and values["alwayson:x:1"] is False
    assert "alwayson:x:2" not in values and values["steps"] == 3


def test_extension_section_values_become_request_extensions_and_script_args():
    from webui.ui import forms

    values = {"prompt": "p", "alwayson:hello-extension:1": "Hi", "alwayson:hello-extension:0": True,
              "alwayson:shout:0": False, "script_name": "X/Y/Z plot", "selected:X/Y/Z plot:1": "1,2",
              "selected:X/Y/Z plot:0": "Steps", "selected:Prompt matrix:0": True}
    request = forms.request_from_values("txt2img", values)
    assert request.extensions == {"hello-extension": {"args": [True, "Hi"]}, "shout": {"args": [False]}}
    assert request.script_name == "X/Y/Z plot" and request.script_args == ("Steps", "1,2")


# ---- the Override settings box (issue 15 point 4) ----------

_PASTED = ("a cat\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x64, Clip skip: 2, RNG: NV, "
           "Eta: 1")


def _store(tmp_path, **values):
    from modules.settings import Settings

    store = Settings(tmp_path / "config.json")
    store.update(values, save=False)
    return store


def test_pasted_settings_that_differ_fill_the_override_box(tmp_path):
    store = _store(tmp_path)  # Clip skip 1, RNG GPU, Eta 1 (the defaults)
    values = forms.values_from_infotext(_PASTED, settings=store)
    # Eta equals the setting; every default A1111's parser injects (Schedule rho 0, VAE Encoder Full...) too.
    assert values["override_settings"] == ["Clip skip: 2", "RNG: NV"]
    same = _store(tmp_path, CLIP_stop_at_last_layers=2, randn_source="NV")
    assert forms.values_from_infotext(_PASTED, settings=same)["override_settings"] == []
    # Without a store (the send-to path fills every candidate), the box drops the equal ones itself.
    every = forms.values_from_infotext(_PASTED)["override_settings"]
    assert {"Clip skip: 2", "RNG: NV", "Eta: 1"} <= set(every)
    assert forms.drop_current(every, store) == ["Clip skip: 2", "RNG: NV"]


def test_override_box_entries_become_typed_override_settings(tmp_path):
    entries = ["Clip skip: 2", "RNG: NV", "Eta: 0.5", "VAE: x.safetensors"]
    assert forms.override_settings_from_entries(entries) == {
        "CLIP_stop_at_last_layers": 2, "randn_source": "NV", "eta_ancestral": 0.5, "sd_vae": "x.safetensors"}
    request = forms.request_from_values("txt2img", {"prompt": "a", "override_settings": entries[:2]})
    assert request.override_settings == {"CLIP_stop_at_last_layers": 2, "randn_source": "NV"}
    assert forms.request_from_values("txt2img", {"prompt": "a", "override_settings": []}).override_settings == {}
    with pytest.raises(UserInputError) as err:
        forms.override_settings_from_entries(["Nonsense: 3"])
    assert err.value.field == "override_settings"


def test_a_pasted_vae_differs_only_when_it_is_not_the_current_one(tmp_path):
    text = _PASTED.replace("Eta: 1", "VAE hash: 0123456789, VAE: x.safetensors")
    assert "VAE: x.safetensors" in forms.values_from_infotext(text, settings=_store(tmp_path))["override_settings"]
    same = _store(tmp_path, sd_vae="x.safetensors")
    assert "VAE: x.safetensors" not in forms.values_from_infotext(text, settings=same)["override_settings"]
