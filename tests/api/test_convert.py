"""In-process checks of the hand-written schemas (A1111's API defaults) and the schema -> request translation."""
from __future__ import annotations

from PIL import Image

from webui.api.convert import apply_infotext, echo_parameters, generation_request, ignored_field_warnings
from webui.api.schemas import ExtrasSingleImageRequest, Img2ImgRequest, ProgressResponse, Txt2ImgRequest


def test_txt2img_defaults_are_a1111_api_defaults():
    body = Txt2ImgRequest()
    assert (body.steps, body.sampler_index, body.sampler_name, body.cfg_scale) == (50, "Euler", None, 7.0)
    assert (body.width, body.height, body.seed, body.subseed) == (512, 512, -1, -1)
    assert (body.seed_resize_from_w, body.seed_resize_from_h) == (-1, -1)
    assert (body.send_images, body.save_images, body.batch_size, body.n_iter) == (True, False, 1, 1)
    assert (body.hr_scale, body.hr_upscaler, body.enable_hr, body.denoising_strength) == (2.0, None, False, None)
    assert body.alwayson_scripts == {} and body.script_args == [] and body.override_settings is None


def test_img2img_defaults_are_a1111_api_defaults():
    body = Img2ImgRequest()
    assert (body.inpaint_full_res, body.inpaint_full_res_padding, body.inpainting_fill) == (True, 0, 0)
    assert (body.mask_blur_x, body.mask_blur_y, body.mask_blur, body.mask_round) == (4, 4, None, True)
    assert (body.denoising_strength, body.resize_mode, body.include_init_images) == (0.75, 0, False)
    assert body.init_images is None and body.mask is None and body.steps == 50


def test_unknown_fields_are_ignored_and_extras_defaults():
    body = Txt2ImgRequest(prompt="x", no_such_field=3, controlnet_units=[])
    assert body.prompt == "x" and not hasattr(body, "no_such_field")
    extras = ExtrasSingleImageRequest()
    assert (extras.upscaler_1, extras.upscaling_resize, extras.upscaling_crop) == ("None", 2.0, True)
    assert set(ProgressResponse.model_fields) == {"progress", "eta_relative", "state", "current_image", "textinfo"}


def test_generation_request_from_txt2img():
    body = Txt2ImgRequest(prompt="p", steps=3, enable_hr=True, styles=["s"], alwayson_scripts={"x": {"args": []}},
                          override_settings={"CLIP_stop_at_last_layers": 2}, hr_sampler_name=None, eta=0.5)
    request = generation_request(body, mode="txt2img", sampler="Euler a", schedule="Karras")
    assert (request.mode, request.sampler_name, request.scheduler, request.steps) == ("txt2img", "Euler a", "Karras", 3)
    assert request.styles == ("s",) and request.extensions == {"x": {"args": []}} and request.eta == 0.5
    assert request.denoising_strength == 0.75  # A1111's txt2img default for hires fix
    assert request.hr_sampler_name == "Use same sampler" and request.hr_upscaler == "Latent"
    assert request.override_settings == {"CLIP_stop_at_last_layers": 2}
    # The API saves nothing and makes no grid unless save_images is set.
    assert (request.save_images, request.do_not_save_grid) == (False, True)
    saving = generation_request(Txt2ImgRequest(save_images=True), mode="txt2img", sampler="Euler", schedule="Automatic")
    assert (saving.save_images, saving.do_not_save_grid) == (True, False)


def test_generation_request_from_img2img_mask_blur():
    image = Image.new("RGB", (8, 8))
    body = Img2ImgRequest(init_images=["…"], mask_blur_x=3, mask_blur_y=5)
    request = generation_request(body, mode="img2img", sampler="Euler", schedule="Automatic",
                                 init_images=[image], mask=image)
    assert request.init_images == (image,) and request.mask is image
    assert (request.mask_blur, request.mask_blur_x, request.mask_blur_y) == (3, 3, 5)
    request = generation_request(Img2ImgRequest(mask_blur=7), mode="img2img", sampler="Euler", schedule="Automatic")
    assert (request.mask_blur, request.mask_blur_x, request.mask_blur_y) == (7, None, None)
    assert request.inpaint_full_res is True and request.inpaint_full_res_padding == 0


def test_infotext_fills_only_unset_fields():
    text = ("a cat\nNegative prompt: dog\nSteps: 9, Sampler: DPM++ 2M Karras, CFG scale: 3, Seed: 5, "
            "Size: 96x64, Clip skip: 2, Model hash: abc1234567, Model: mine")
    body = Txt2ImgRequest(infotext=text, steps=4, override_settings={"CLIP_stop_at_last_layers": 1})
    known = {"CLIP_stop_at_last_layers", "sd_model_checkpoint", "emphasis"}
    filled, warnings = apply_infotext(body, has_checkpoint=lambda name: name == "abc1234567", known_settings=known)
    assert (filled.prompt, filled.negative_prompt, filled.seed, filled.cfg_scale) == ("a cat", "dog", 5, 3.0)
    assert (filled.width, filled.height, filled.steps) == (96, 64, 4)  # steps was given: kept
    assert (filled.sampler_name, filled.scheduler) == ("DPM++ 2M", "Karras")
    # The client's own override wins over the infotext's; the model the infotext names joins them.
    assert filled.override_settings == {"CLIP_stop_at_last_layers": 1, "sd_model_checkpoint": "abc1234567"}
    assert warnings == []
    filled, warnings = apply_infotext(body, has_checkpoint=lambda name: False, known_settings=known)
    assert "sd_model_checkpoint" not in filled.override_settings and "abc1234567" in warnings[0]


def test_echo_and_warnings():
    body = Img2ImgRequest(init_images=["abc"], mask="m", restore_faces=True, s_churn=1.0, s_min_uncond=0.5)
    params = echo_parameters(body, "Euler", "Automatic", include_init_images=False)
    assert params["init_images"] is None and params["mask"] is None and params["sampler_name"] == "Euler"
    notes = ignored_field_warnings(body)
    assert any("restore_faces" in n for n in notes)
    assert not any("s_churn" in n or "s_min_uncond" in n for n in notes)  # the s_* fields reach the sampler now


def test_s_min_uncond_reaches_the_request():
    # A1111's p.s_min_uncond (NGMS): the request carries it, None = the s_min_uncond setting.
    body = Txt2ImgRequest(s_min_uncond=1.5)
    assert generation_request(body, mode="txt2img", sampler="Euler", schedule="Automatic").s_min_uncond == 1.5
    assert generation_request(Txt2ImgRequest(), mode="txt2img", sampler="Euler",
                              schedule="Automatic").s_min_uncond is None
