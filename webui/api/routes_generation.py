"""Generation routes: validate, submit to the job queue, wait, answer with base64 images + info."""
from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from modules.generation.service import submit_generation
from modules.types import UserInputError
from webui.api.app import error_response
from webui.api.convert import encode_png_base64, result_info, txt2img_request
from webui.api.schemas import ImageResponse, Txt2ImgRequest

router = APIRouter()


def resolve_api_sampler(name: str | None, index: str, scheduler: str | None) -> tuple[str, str, list[str]]:
    """sampler_name wins over sampler_index; legacy names are split; unknown falls back and says so."""
    from modules.samplers import resolve_sampler_or_default

    sampler, schedule, warnings = resolve_sampler_or_default(name or index, scheduler)
    return sampler.name, schedule.name, warnings


@router.post("/txt2img", response_model=ImageResponse)
async def txt2img(body: Txt2ImgRequest, request: Request):
    ctx = request.app.state.ctx
    sampler, schedule, warnings = resolve_api_sampler(body.sampler_name, body.sampler_index, body.scheduler)
    gen = txt2img_request(body, sampler).with_changes(scheduler=schedule)
    job = submit_generation(ctx, gen)
    # Wait without blocking the event loop, so /progress and other clients keep being answered.
    result = await asyncio.get_running_loop().run_in_executor(None, job.wait_result)
    if job.error is not None:
        exc = job.exception
        if isinstance(exc, UserInputError):
            return error_response(422, "UserInputError", str(exc))
        return error_response(500, type(exc).__name__ if exc else "Error", job.error)
    result.warnings = list(warnings) + list(result.warnings)
    images = [encode_png_base64(img, text) for img, text in zip(result.images, result.infotexts)]
    if not body.send_images:
        images = []
    params = body.model_dump()
    params.update(sampler_name=sampler, scheduler=schedule)
    return ImageResponse(images=images, parameters=params, info=result_info(gen, result))
