"""txt2img and img2img: validate, submit to the job queue, wait, answer with base64 PNGs + info."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from webui.api.calls import answer, submit_img2img, submit_txt2img
from webui.api.schemas import ImageResponse, Img2ImgRequest, Txt2ImgRequest

router = APIRouter()
JOB_HEADER = "X-Job-Id"  # the queue's id of the job that made this answer (see GET .../jobs/{id})


@router.post("/txt2img", response_model=ImageResponse)
async def txt2img(body: Txt2ImgRequest, request: Request, response: Response):
    # Parsing the infotext and checking the request is CPU work: off the event loop, like img2img's decoding.
    call = await run_in_threadpool(submit_txt2img, request.app.state.ctx, body)
    response.headers[JOB_HEADER] = call.job.id
    return await answer(call, request)


@router.post("/img2img", response_model=ImageResponse)
async def img2img(body: Img2ImgRequest, request: Request, response: Response):
    # Decoding (and maybe fetching) the input images blocks: keep it off the event loop.
    call = await run_in_threadpool(submit_img2img, request.app.state.ctx, body)
    response.headers[JOB_HEADER] = call.job.id
    return await answer(call, request)
