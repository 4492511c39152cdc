"""API schemas <-> core types: the one place that translates A1111 API fields to a GenerationRequest and a
GenerationResult back to A1111's response fields (base64 PNGs, the `info` JSON string)."""
from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Collection
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from modules.images.infotext import infotext_to_request_fields, parse_infotext
from modules.types import GenerationRequest, GenerationResult

# A1111's txt2img default when hires fix is on and the client sent no denoising strength.
TXT2IMG_HR_DENOISING = 0.75
# Request fields that infotext fills but that live in override_settings in the API.
_INFOTEXT_SETTINGS = {"clip_skip": "CLIP_stop_at_last_layers", "sd_model_checkpoint": "sd_model_checkpoint",
                      "sd_vae": "sd_vae"}
_GENERATION_FIELDS = frozenset(GenerationRequest.__dataclass_fields__)


def apply_infotext(body, has_checkpoint: Callable[[str], bool] = lambda name: True,
                   known_settings: Collection[str] | None = None) -> tuple[Any, list[str]]:
    """(a copy of `body` whose fields the client left unset are filled from `body.infotext`, warnings).

    A1111's rule: only unset fields are filled. Settings the infotext carries join override_settings, the
    client's own overrides winning; a model the infotext names but this server lacks is left out (pasted
    infotexts often come from other machines), with a warning. Settings this server does not have
    (`known_settings`; None = keep all) are left out silently: A1111's parser injects many by default.
    """
    if not body.infotext:
        return body, []
    fields = infotext_to_request_fields(parse_infotext(body.infotext))
    explicit = body.model_fields_set
    update: dict[str, Any] = {}
    warnings: list[str] = []
    overrides = {k: v for k, v in fields.pop("override_settings", {}).items()
                 if known_settings is None or k in known_settings}
    for name, setting in _INFOTEXT_SETTINGS.items():
        if name in fields:
            overrides[setting] = fields.pop(name)
    model = overrides.get("sd_model_checkpoint")
    if model and not has_checkpoint(str(model)):
        del overrides["sd_model_checkpoint"]
        warnings.append(f"infotext: no checkpoint matches {model!r}; the loaded model was used")
    for name, value in fields.items():
        if name in type(body).model_fields and name not in explicit:
            update[name] = value
    if overrides:
        update["override_settings"] = {**overrides, **(body.override_settings or {})}
    return body.model_copy(update=update), warnings


def generation_request(body, *, mode: str, sampler: str, schedule: str, init_images=(), mask=None
                       ) -> GenerationRequest:
    """The core request from a Txt2ImgRequest/Img2ImgRequest; sampler and schedule are already resolved."""
    data = body.model_dump()
    values: dict[str, Any] = {k: v for k, v in data.items() if k in _GENERATION_FIELDS and v is not None}
    values.update(
        mode=mode, sampler_name=sampler, scheduler=schedule,
        styles=tuple(data.get("styles") or ()),
        override_settings=dict(data.get("override_settings") or {}),
        extensions=dict(data.get("alwayson_scripts") or {}),
        script_name=data.get("script_name") or "",
        script_args=tuple(data.get("script_args") or ()),
        # A1111's API saves nothing unless save_images is set, and then makes a grid too.
        save_images=bool(data.get("save_images")) and not data.get("do_not_save_samples"),
        do_not_save_grid=not data.get("save_images") or bool(data.get("do_not_save_grid")),
        refiner_checkpoint=data.get("refiner_checkpoint") or "",
    )
    for name in ("hr_upscaler", "hr_sampler_name", "hr_scheduler", "refiner_switch_at"):
        if not data.get(name):
            values.pop(name, None)  # "" or None: the core's default ("Use same ...", Latent)
    if mode == "txt2img":
        if data.get("denoising_strength") is None:
            values["denoising_strength"] = TXT2IMG_HR_DENOISING
    else:
        values["init_images"] = tuple(init_images)
        values["mask"] = mask
        if data.get("mask_blur") is not None:
            values.update(mask_blur_x=None, mask_blur_y=None)
        else:
            values["mask_blur"] = data["mask_blur_x"]
    return GenerationRequest(**values)


def ignored_field_warnings(body) -> list[str]:
    """Warnings for fields A1111 clients send that this build cannot honour (shown in `info`)."""
    notes = []
    if body.restore_faces:
        notes.append("restore_faces: face restoration is not available in this build; ignored")
    if body.hr_checkpoint_name and body.hr_checkpoint_name != "Use same checkpoint" and body.enable_hr:
        notes.append("hr_checkpoint_name: a separate hires checkpoint is not supported; the same model was used")
    return notes


def encode_png_base64(image: Image.Image, infotext: str = "", extra: dict[str, str] | None = None) -> str:
    """PNG bytes as raw base64 (no data: prefix, as A1111 returns), with the `parameters` text chunk."""
    meta = PngInfo()
    for key, value in {"parameters": infotext, **(extra or {})}.items():
        if value:
            meta.add_itxt(key, value) if not _latin1(value) else meta.add_text(key, value)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=meta)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def result_images(result: GenerationResult) -> list[str]:
    """Base64 PNGs of a result, the grid first when there is one (A1111's return_grid)."""
    images = [encode_png_base64(img, text) for img, text in zip(result.images, result.infotexts)]
    if result.grid is not None:
        images.insert(0, encode_png_base64(result.grid, result.grid_info))
    return images


def result_info(request: GenerationRequest, result: GenerationResult, warnings: list[str] = ()) -> str:
    """A1111's `info`: a JSON *string* describing the job, plus our `warnings` (fallbacks, ignored fields)."""
    params = parse_infotext(result.grid_info) if result.grid_info else {}
    info = {
        "prompt": result.all_prompts[0] if result.all_prompts else request.prompt,
        "all_prompts": result.all_prompts,
        "negative_prompt": result.all_negative_prompts[0] if result.all_negative_prompts else request.negative_prompt,
        "all_negative_prompts": result.all_negative_prompts,
        "seed": result.seed,
        "all_seeds": result.all_seeds,
        "subseed": result.all_subseeds[0] if result.all_subseeds else -1,
        "all_subseeds": result.all_subseeds,
        "subseed_strength": request.subseed_strength,
        "width": request.width,
        "height": request.height,
        "sampler_name": request.sampler_name,
        "cfg_scale": request.cfg_scale,
        "steps": request.steps,
        "batch_size": request.batch_size,
        "restore_faces": False,
        "face_restoration_model": None,
        "sd_model_name": params.get("Model"),
        "sd_model_hash": params.get("Model hash"),
        "sd_vae_name": params.get("VAE"),
        "sd_vae_hash": params.get("VAE hash"),
        "seed_resize_from_w": request.seed_resize_from_w,
        "seed_resize_from_h": request.seed_resize_from_h,
        "denoising_strength": request.denoising_strength if request.mode == "img2img" or request.enable_hr else None,
        "extra_generation_params": result.extra.get("extra_generation_params", {}),
        "index_of_first_image": 1 if result.grid is not None else 0,
        "infotexts": ([result.grid_info] if result.grid is not None else []) + list(result.infotexts),
        "styles": list(request.styles),
        "job_timestamp": result.job_timestamp,
        "clip_skip": request.clip_skip,
        "is_using_inpainting_conditioning": False,
        "version": "sd-webui-diffusers",
        "interrupted": result.interrupted,
        "warnings": list(warnings) + list(result.warnings),
    }
    return json.dumps(info, default=str)


def echo_parameters(body, sampler: str, schedule: str, *, include_init_images: bool = True) -> dict[str, Any]:
    """`parameters`: the request with defaults filled and the sampler as it was resolved (A1111 echoes it)."""
    params = body.model_dump()
    params.update(sampler_name=sampler, scheduler=schedule)
    if not include_init_images:
        # A1111 leaves the (large) input images out of the echo unless include_init_images is set.
        params.update(init_images=None, mask=None)
    return params
