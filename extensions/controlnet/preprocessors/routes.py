"""sd-webui-controlnet's preprocessor routes: GET /controlnet/module_list and POST /controlnet/detect, with
its field names, so its API clients work unchanged."""
from __future__ import annotations

import base64
import io

from fastapi import HTTPException
from PIL import Image
from pydantic import BaseModel, Field

from modules.types import UserInputError

from . import (
    ALLOW_DOWNLOAD_SETTING,
    DetectorCache,
    annotators_dir_for,
    module_details,
    module_names,
    run_preprocessor,
)


class DetectRequest(BaseModel):
    """POST /controlnet/detect's body (sd-webui-controlnet names and defaults; -1: the module's default)."""

    controlnet_module: str = "none"
    controlnet_input_images: list[str] = Field(default_factory=list)
    controlnet_images: list[str] = Field(default_factory=list)  # the older name (the webuiapi client sends it)
    controlnet_processor_res: int = -1
    controlnet_threshold_a: float = -1
    controlnet_threshold_b: float = -1
    controlnet_masks: list[str] = Field(default_factory=list)  # accepted; no module here takes a mask
    low_vram: bool = False


def add_routes(api, cache: DetectorCache | None = None) -> None:
    """Register the two routes on `api` (an ExtensionApi)."""
    folder = annotators_dir_for(api)
    cache = cache or DetectorCache()

    def allow_download() -> bool:
        try:
            return bool(api.setting(ALLOW_DOWNLOAD_SETTING))
        except (KeyError, ValueError):
            return False

    def module_list(alias_names: bool = False) -> dict:
        return {"module_list": module_names(alias_names), "module_detail": module_details(alias_names)}

    def detect(body: DetectRequest) -> dict:
        inputs = body.controlnet_input_images or body.controlnet_images
        if not inputs:
            raise HTTPException(status_code=422, detail="controlnet_input_images: no image given")
        images = []
        try:
            for index, encoded in enumerate(inputs):
                image = _decode(encoded, f"controlnet_input_images[{index}]")
                result = run_preprocessor(body.controlnet_module, image, body.controlnet_processor_res,
                                          body.controlnet_threshold_a, body.controlnet_threshold_b,
                                          annotators_dir=folder, allow_download=allow_download(), cache=cache)
                images.append(_encode(result))
        except UserInputError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return {"images": images, "info": "Success"}

    api.add_route("/controlnet/module_list", module_list, methods=("GET",))
    api.add_route("/controlnet/detect", detect, methods=("POST",))


def _decode(encoded: str, field: str) -> Image.Image:
    # The units module decodes images for the generation path; the same rules apply here.
    from ..units import decode_image

    image = decode_image(encoded, field)
    if image is None:
        raise UserInputError(f"{field}: empty image")
    return image


def _encode(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
