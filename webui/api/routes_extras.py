"""Extras (upscaling, and the Extras steps extensions add) through the job queue, and PNG info.

A1111's extra-single-image and extra-batch-images take no postprocessing-step args; ours take one optional
field on top, `extras_steps: {"<step name>": {"enable": true, "<arg>": value, ...}}` (GET
/sdapi/v1/extras-steps lists the steps and their default args). A1111 clients never send it and get
A1111's answer. A step that makes several images from one (split, flipped copies) adds them to
extra-batch-images' `images`; extra-single-image answers the first.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from modules.images.infotext import parse_infotext
from modules.images.saving import read_image_info
from modules.postprocessing import ExtrasRequest, registered_steps
from modules.postprocessing.extras import validate_steps
from webui.api.calls import answer, submit_extras_batch, submit_extras_single
from webui.api.image_input import URL_SETTING, decode_image
from webui.api.limits import INFOTEXT_SETTING, ApiLimits, check_length
from webui.api.schemas import (
    ExtrasBatchImagesRequest,
    ExtrasBatchImagesResponse,
    ExtrasSingleImageRequest,
    ExtrasSingleImageResponse,
    PNGInfoRequest,
    PNGInfoResponse,
)

router = APIRouter()
STEPS_FIELD = Field(default_factory=dict, description=(
    "not in A1111: Extras steps to run after the upscale, {step name: {enable, arg: value}}; "
    "GET /sdapi/v1/extras-steps lists them"))


class ExtrasSingleWithSteps(ExtrasSingleImageRequest):
    extras_steps: dict[str, dict[str, Any]] = STEPS_FIELD


class ExtrasBatchWithSteps(ExtrasBatchImagesRequest):
    extras_steps: dict[str, dict[str, Any]] = STEPS_FIELD


class ExtrasStepItem(BaseModel):
    name: str
    order: int
    description: str
    args: dict[str, Any] = Field(description="the default args (enable is false until sent true)")


def _check_steps(ctx, body) -> None:
    """Unknown step names are refused (422) before anything is queued."""
    if body.extras_steps:
        validate_steps(ExtrasRequest(steps=body.extras_steps), registered_steps(ctx))


@router.post("/extra-single-image", response_model=ExtrasSingleImageResponse)
async def extra_single_image(body: ExtrasSingleWithSteps, request: Request):
    _check_steps(request.app.state.ctx, body)
    call = await run_in_threadpool(submit_extras_single, request.app.state.ctx, body)
    return await answer(call, request)


@router.post("/extra-batch-images", response_model=ExtrasBatchImagesResponse)
async def extra_batch_images(body: ExtrasBatchWithSteps, request: Request):
    _check_steps(request.app.state.ctx, body)
    call = await run_in_threadpool(submit_extras_batch, request.app.state.ctx, body)
    return await answer(call, request)


@router.get("/extras-steps", response_model=list[ExtrasStepItem])
def extras_steps(request: Request):
    """The Extras steps extensions registered, in run order (not in A1111)."""
    steps = registered_steps(request.app.state.ctx)
    return [ExtrasStepItem(name=s.name, order=s.order, description=s.description,
                           args={"enable": False, **s.defaults}) for s in steps]


@router.post("/png-info", response_model=PNGInfoResponse)
def png_info(body: PNGInfoRequest, request: Request):
    # Reading text chunks needs no model: answered at once, not queued.
    if not body.image.strip():
        return PNGInfoResponse(info="", items={}, parameters={})
    settings = request.app.state.ctx.settings
    limits = ApiLimits.from_settings(settings)
    image = decode_image(body.image, "image", allow_urls=bool(settings.get(URL_SETTING)),
                         max_pixels=limits.max_image_pixels)
    text, items = read_image_info(image)
    # The parameters chunk is the client's text too: the infotext limit applies before parsing it.
    check_length(text, limits.max_infotext_length, "image", INFOTEXT_SETTING)
    # No or an empty chunk still gets A1111's defaults (Prompt "", Clip skip 1, ...), as A1111 answers.
    return PNGInfoResponse(info=text or "", items=items, parameters=parse_infotext(text))
