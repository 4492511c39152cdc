"""API schemas <-> core types: the one place that translates A1111 API fields to a GenerationRequest."""
from __future__ import annotations

import base64
import io
import json
from typing import Any

from PIL import Image

from modules.types import GenerationRequest, GenerationResult


def txt2img_request(body, sampler_name: str) -> GenerationRequest:
    """Build the core request from a Txt2ImgRequest; `sampler_name` is the resolved sampler."""
    data = body.model_dump()
    fields = GenerationRequest.__dataclass_fields__
    values: dict[str, Any] = {k: v for k, v in data.items() if k in fields and v is not None}
    values["styles"] = tuple(data.get("styles") or ())
    values["sampler_name"] = sampler_name
    values["override_settings"] = dict(data.get("override_settings") or {})
    values["extensions"] = dict(data.get("alwayson_scripts") or {})
    values["script_name"] = data.get("script_name") or ""
    values["script_args"] = tuple(data.get("script_args") or ())
    values["save_images"] = bool(data.get("save_images")) and not data.get("do_not_save_samples")
    values["scheduler"] = data.get("scheduler") or "Automatic"
    values["mode"] = "txt2img"
    return GenerationRequest(**values)


def encode_png_base64(image: Image.Image, infotext: str = "") -> str:
    """PNG bytes as raw base64 (no data: prefix, as A1111 returns), with the parameters chunk."""
    from PIL.PngImagePlugin import PngInfo

    meta = PngInfo()
    if infotext:
        meta.add_text("parameters", infotext)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=meta)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def result_info(request: GenerationRequest, result: GenerationResult, extra: dict | None = None) -> str:
    """A1111's `info`: a JSON *string* describing the job."""
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
        "seed_resize_from_w": request.seed_resize_from_w,
        "seed_resize_from_h": request.seed_resize_from_h,
        "denoising_strength": request.denoising_strength if request.mode == "img2img" or request.enable_hr else None,
        "extra_generation_params": result.extra.get("extra_generation_params", {}),
        "index_of_first_image": 1 if result.grid is not None else 0,
        "infotexts": result.infotexts,
        "styles": list(request.styles),
        "job_timestamp": result.job_timestamp,
        "clip_skip": request.clip_skip,
        "is_using_inpainting_conditioning": False,
        "version": "sd-webui-diffusers",
        "warnings": result.warnings,
    }
    info.update(extra or {})
    return json.dumps(info)
