"""Extras (upscaling) through the job queue, and PNG info."""
from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modules.images.infotext import parse_infotext
from modules.images.saving import read_image_info
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


@router.post("/extra-single-image", response_model=ExtrasSingleImageResponse)
async def extra_single_image(body: ExtrasSingleImageRequest, request: Request):
    call = await run_in_threadpool(submit_extras_single, request.app.state.ctx, body)
    return await answer(call, request)


@router.post("/extra-batch-images", response_model=ExtrasBatchImagesResponse)
async def extra_batch_images(body: ExtrasBatchImagesRequest, request: Request):
    call = await run_in_threadpool(submit_extras_batch, request.app.state.ctx, body)
    return await answer(call, request)


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
