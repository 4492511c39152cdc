"""API work on the job queue: validate a request, submit it, and turn the finished job into A1111's answer.

The synchronous A1111 routes and the job API share this: a route `submit_*`s an ApiCall, then either waits
for it (`answer`) or hands back the job id while `ApiCalls` keeps the call until its result is fetched.
Validation happens before submitting, so a bad request is answered at once even behind a long queue.
"""
from __future__ import annotations

import asyncio
import html
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modules.generation.service import submit_generation
from modules.generation.validation import validate_request
from modules.images.checked import ImageTooLarge
from modules.postprocessing import ExtrasRequest, registry_for, run_extras, validate_extras
from modules.samplers import resolve_sampler_or_default
from modules.types import GenerationRequest, GenerationResult, UserInputError
from webui.api import convert
from webui.api.errors import INTERNAL_ERROR, USER_ERRORS, ApiError, public_job_error
from webui.api.image_input import URL_SETTING, decode_image
from webui.api.limits import (
    IMAGES_SETTING,
    MAX_NAME_LENGTH,
    QUEUE_SETTING,
    ApiLimits,
    check_count,
    check_length,
    check_text_fields,
)
from webui.api.schemas import (
    ExtrasBatchImagesResponse,
    ExtrasSingleImageResponse,
    ImageResponse,
)
from webui.api.scripts import check_scripts

log = logging.getLogger("webui.api")

# Request fields that carry images (base64 or URLs): checked by the body limit and the decoder, not as text.
IMAGE_FIELDS = ("init_images", "mask", "latent_mask", "image")
# nginx's "client closed request": logged by uvicorn, received by nobody.
CLIENT_CLOSED = 499
RETRY_AFTER_S = 10
# Seconds between checks of a waited-for job: short first (tiny jobs end in ms), then at most 0.1 s.
_POLL_MIN, _POLL_MAX = 0.005, 0.1


@dataclass
class ApiCall:
    """A submitted job and the function that makes its answer once it finished (raises ApiError)."""

    job: Any  # modules.jobs.queue.Job
    finish: Callable[[Any], Any]


class ApiCalls:
    """Calls submitted through the job API, by job id, so their result can be fetched later.

    Memory is bounded by dropping finished calls only: a collected one after `collected_grace_s` (a
    client may fetch again after a lost answer), any finished one after `retention_s` or when more than
    `max_finished` are kept (collected ones first, then the oldest). Queued and running calls are never
    dropped: the API's queue limit bounds how many there can be.
    """

    def __init__(self, *, max_finished: int = 256, retention_s: float = 3600.0, collected_grace_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic):
        self._max_finished = max(0, max_finished)
        self._retention_s = retention_s
        self._grace_s = collected_grace_s
        self._clock = clock
        self._calls: OrderedDict[str, ApiCall] = OrderedDict()
        self._finished_at: dict[str, float] = {}  # first seen finished, by our clock
        self._collected_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, call: ApiCall) -> None:
        with self._lock:
            self._calls[call.job.id] = call
            self._trim()

    def get(self, job_id: str) -> ApiCall | None:
        with self._lock:
            return self._calls.get(job_id)

    def mark_collected(self, job_id: str) -> None:
        """The client has the result: the call may go after the grace time."""
        with self._lock:
            if job_id in self._calls:
                self._collected_at.setdefault(job_id, self._clock())
            self._trim()

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)

    def _trim(self) -> None:
        # Caller holds the lock. Runs on every add: a few hundred entries cost microseconds.
        now = self._clock()
        for job_id, call in self._calls.items():
            if call.job.finished:
                self._finished_at.setdefault(job_id, now)
        expired = [job_id for job_id, at in self._finished_at.items()
                   if now - at > self._retention_s
                   or now - self._collected_at.get(job_id, float("inf")) > self._grace_s]
        over = len(self._finished_at) - len(expired) - self._max_finished
        if over > 0:
            gone = set(expired)
            rest = [job_id for job_id in self._finished_at if job_id not in gone]
            rest.sort(key=lambda job_id: (job_id not in self._collected_at, self._finished_at[job_id]))
            expired += rest[:over]
        for job_id in expired:
            self._calls.pop(job_id, None)
            self._finished_at.pop(job_id, None)
            self._collected_at.pop(job_id, None)


async def wait_finished(job, timeout: float | None = None, stop: Callable[[], Awaitable[bool]] | None = None
                        ) -> bool:
    """Wait for the job without holding a thread (many clients may wait at once); True when finished.

    False after `timeout` seconds, or as soon as `stop()` (e.g. the client disconnected) says True.
    """
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    delay = _POLL_MIN
    while not job.finished:
        if deadline is not None and loop.time() >= deadline:
            return False
        if stop is not None and await stop():
            return False
        await asyncio.sleep(delay)
        delay = min(_POLL_MAX, delay * 1.5)
    return True


async def answer(call: ApiCall, request):
    """Wait for the call's job and build its answer (PNG encoding runs off the event loop).

    A client that disconnects while waiting (setting api_cancel_on_disconnect) cancels its job: a queued
    one is removed, a running one stops after its current step, and nothing is encoded for nobody.
    """
    ctx = request.app.state.ctx
    watch = ApiLimits.from_settings(ctx.settings).cancel_on_disconnect
    gone = request.is_disconnected if watch else None
    if not await wait_finished(call.job, stop=gone) or (gone is not None and await gone()):
        if not call.job.finished:
            ctx.jobs.cancel(call.job.id)
            log.info("client of job %s disconnected: job cancelled", call.job.id)
        return Response(status_code=CLIENT_CLOSED)
    return await run_in_threadpool(call.finish, call.job)


def check_queue(ctx, limits: ApiLimits) -> None:
    """503 while the queue holds `limits.queue_limit` waiting jobs (UI jobs count too): a clear answer now
    beats a wait that grows without end. Checked before submitting; concurrent requests may overshoot the
    limit by a few, never without bound."""
    waiting = ctx.jobs.pending
    if 0 < limits.queue_limit <= waiting:
        raise ApiError(503, "QueueFull", f"the queue is full: {waiting} jobs are waiting (limit {limits.queue_limit}, "
                                         f"setting {QUEUE_SETTING}); try again later",
                       headers={"Retry-After": str(RETRY_AFTER_S)})


def raise_for_job(job) -> None:
    """A failed job as the error answer: a bad value is 422, anything else 500; only user errors keep their
    text (see errors.public_job_error)."""
    if job.error is None:
        return
    exc = job.exception
    if isinstance(exc, UserInputError):
        raise ApiError(422, "UserInputError", str(exc))
    if isinstance(exc, USER_ERRORS):
        raise ApiError(500, type(exc).__name__, job.error)
    raise ApiError(500, INTERNAL_ERROR, public_job_error(job))


# ---- generation ----------


def submit_txt2img(ctx, body) -> ApiCall:
    limits = ApiLimits.from_settings(ctx.settings)
    check_queue(ctx, limits)
    check_text_fields(body, limits)
    return _submit_generation(ctx, body, "txt2img")


def submit_img2img(ctx, body) -> ApiCall:
    """Check sizes, decode the input images (blocking: may fetch URLs), then submit; 404 when there is none."""
    limits = ApiLimits.from_settings(ctx.settings)
    check_queue(ctx, limits)
    check_text_fields(body, limits, long_fields=IMAGE_FIELDS)
    if not body.init_images:
        raise ApiError(404, "HTTPException", "Init image not found")
    check_count(len(body.init_images), limits.max_images, "init_images", IMAGES_SETTING)
    images = [_decode(ctx, limits, v, f"init_images[{i}]") for i, v in enumerate(body.init_images)]
    mask = _decode(ctx, limits, body.mask, "mask") if body.mask else None
    return _submit_generation(ctx, body, "img2img", images, mask)


def _decode(ctx, limits: ApiLimits, value: str, field: str):
    return decode_image(value, field, allow_urls=bool(ctx.settings.get(URL_SETTING)),
                        max_pixels=limits.max_image_pixels)


def _submit_generation(ctx, body, mode: str, init_images=(), mask=None) -> ApiCall:
    # 1. Request: infotext fills what the client left unset; sampler_name wins over sampler_index, legacy
    #    names ("DPM++ 2M Karras") are split, an unknown one falls back to Euler and says so in `info`.
    body, notes = convert.apply_infotext(body, lambda name: ctx.checkpoints.find(name) is not None,
                                         {spec.key for spec in ctx.settings.specs()})
    body = check_scripts(ctx, body, mode)
    sampler, schedule, warnings = resolve_sampler_or_default(body.sampler_name or body.sampler_index,
                                                             body.scheduler)
    warnings = [*notes, *warnings]
    request = convert.generation_request(body, mode=mode, sampler=sampler.name, schedule=schedule.name,
                                         init_images=init_images, mask=mask)
    # 2. Bad values are answered now, not after the queue.
    validate_request(request)
    warnings = [*warnings, *convert.ignored_field_warnings(body)]
    params = convert.echo_parameters(body, sampler.name, schedule.name,
                                     include_init_images=getattr(body, "include_init_images", True))
    # 3. Queue.
    job = submit_generation(ctx, request)
    return ApiCall(job, lambda done: finish_generation(done, request, warnings, params, body.send_images))


def finish_generation(job, request: GenerationRequest, warnings: list[str], params: dict, send_images: bool
                      ) -> ImageResponse:
    raise_for_job(job)
    result = job.result if isinstance(job.result, GenerationResult) else GenerationResult(interrupted=True)
    if job.state in ("interrupted", "cancelled"):
        result.interrupted = True
        warnings = [*warnings, f"job was {job.state}: {len(result.images)} image(s) finished"]
    images = convert.result_images(result) if send_images else []
    return ImageResponse(images=images, parameters=params, info=convert.result_info(request, result, warnings))


# ---- extras ----------


def extras_request(ctx, body, images: list[tuple[str, Any]]) -> ExtrasRequest:
    request = ExtrasRequest(
        images=tuple(images), resize_mode=body.resize_mode, upscaling_resize=body.upscaling_resize,
        upscaling_resize_w=body.upscaling_resize_w, upscaling_resize_h=body.upscaling_resize_h,
        upscaling_crop=body.upscaling_crop, upscaler_1=body.upscaler_1, upscaler_2=body.upscaler_2,
        extras_upscaler_2_visibility=body.extras_upscaler_2_visibility, upscale_first=body.upscale_first,
        gfpgan_visibility=body.gfpgan_visibility, codeformer_visibility=body.codeformer_visibility,
        codeformer_weight=body.codeformer_weight, save=False, show_results=body.show_extras_results,
        steps=dict(getattr(body, "extras_steps", None) or {}),  # our optional field (routes_extras.py)
    )
    validate_extras(request, registry_for(ctx))
    return request


def submit_extras_single(ctx, body) -> ApiCall:
    limits = ApiLimits.from_settings(ctx.settings)
    check_queue(ctx, limits)
    check_text_fields(body, limits, long_fields=IMAGE_FIELDS)
    image = _decode(ctx, limits, body.image, "image")
    request = extras_request(ctx, body, [("image", image)])
    job = ctx.jobs.submit("extras", lambda job_ctx: run_extras(ctx, request, job_ctx), description="extras")
    return ApiCall(job, lambda done: _finish_extras(done, single=True))


def submit_extras_batch(ctx, body) -> ApiCall:
    """Decode the batch; an image over the pixel limit is skipped and named in html_info, not fatal."""
    limits = ApiLimits.from_settings(ctx.settings)
    check_queue(ctx, limits)
    check_text_fields(body, limits)
    check_count(len(body.imageList), limits.max_images, "imageList", IMAGES_SETTING)
    images, skipped = [], []
    for i, item in enumerate(body.imageList):
        check_length(item.name, MAX_NAME_LENGTH, f"imageList[{i}].name")
        try:
            images.append((item.name, _decode(ctx, limits, item.data, f"imageList[{i}].data")))
        except ImageTooLarge as exc:
            skipped.append(f"skipped {item.name}: {exc}")
    if not images:
        raise UserInputError("; ".join(skipped) or "no images given", field="imageList")
    request = extras_request(ctx, body, images)
    job = ctx.jobs.submit("extras", lambda job_ctx: run_extras(ctx, request, job_ctx), description="extras batch")
    return ApiCall(job, lambda done: _finish_extras(done, single=False, notes=skipped))


def _finish_extras(job, *, single: bool, notes: list[str] = ()):
    raise_for_job(job)
    result = job.result if isinstance(job.result, GenerationResult) else GenerationResult()
    encoded = [convert.encode_png_base64(img, img.info.get("parameters", ""), {"extras": img.info.get("extras", "")})
               for img in result.images]
    lines = [result.infotexts[0] if result.infotexts else "", *result.warnings, *notes]
    html_info = "".join(f"<p>{html.escape(line)}</p>" for line in lines if line)
    if single:
        if not encoded:
            raise ApiError(500, "RuntimeError", f"extras job {job.state} without an image")
        return ExtrasSingleImageResponse(html_info=html_info, image=encoded[0])
    return ExtrasBatchImagesResponse(html_info=html_info, images=encoded)
