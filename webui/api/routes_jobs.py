"""The job API, beyond A1111: submit -> job id -> poll status/progress/preview -> fetch the result; cancel
one job without touching the others. A job's result has exactly the shape of the synchronous route's."""
from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from modules.extensions.api import EXTENSION_JOB_PREFIX
from webui.api.calls import (
    ApiCall,
    raise_for_job,
    submit_extras_single,
    submit_img2img,
    submit_txt2img,
    wait_finished,
)
from webui.api.convert import encode_png_base64
from webui.api.errors import ApiError, public_job_error
from webui.api.schemas import (
    ExtrasSingleImageRequest,
    ExtrasSingleImageResponse,
    ImageResponse,
    Img2ImgRequest,
    Txt2ImgRequest,
)
from webui.api.schemas_jobs import JobList, JobPreview, JobStatus

router = APIRouter(prefix="/jobs")
MAX_WAIT_S = 60.0


def job_status(job, has_result: bool) -> JobStatus:
    snap = job.snapshot()
    return JobStatus(
        id=job.id, kind=job.kind, description=job.description, state=job.state, position=job.position,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
        progress=snap.progress, eta_relative=snap.eta_relative, sampling_step=snap.step,
        sampling_steps=snap.steps_total, job_no=snap.image_index, job_count=snap.images_total,
        textinfo=snap.textinfo, preview_id=snap.preview_id, error=public_job_error(job), has_result=has_result,
    )


def _accepted(request: Request, call: ApiCall) -> JSONResponse:
    request.app.state.api_calls.add(call)
    status = job_status(call.job, has_result=True)
    location = f"{request.url.path.rsplit('/', 1)[0]}/{call.job.id}"
    return JSONResponse(status.model_dump(), status_code=202, headers={"Location": location})


def _job(request: Request, job_id: str):
    job = request.app.state.ctx.jobs.get(job_id)
    if job is None:
        # The queue's history is shared with the UI and short; a job-API call is kept until collected.
        call = request.app.state.api_calls.get(job_id)
        job = call.job if call is not None else None
    if job is None:
        raise ApiError(404, "NotFound", f"no job with id {job_id!r} (finished jobs are kept for a while only)")
    return job


def _has_result(request: Request, job) -> bool:
    # Extension jobs (api.submit_job) keep their JSON result on the job itself.
    return request.app.state.api_calls.get(job.id) is not None or job.kind.startswith(EXTENSION_JOB_PREFIX)


def _extension_result(job):
    """An extension job's answer: its JSON result (an interrupted job's partial one too), or its error."""
    raise_for_job(job)
    if job.state == "cancelled":
        raise ApiError(409, "Cancelled", f"job {job.id!r} was cancelled before it started; it has no result")
    return JSONResponse(job.result if job.result is not None else {})


@router.post("/txt2img", status_code=202, response_model=JobStatus,
             summary="Queue a txt2img job (body as POST /txt2img); answers at once with the job id")
async def submit_txt2img_job(body: Txt2ImgRequest, request: Request):
    return _accepted(request, await run_in_threadpool(submit_txt2img, request.app.state.ctx, body))


@router.post("/img2img", status_code=202, response_model=JobStatus,
             summary="Queue an img2img job (body as POST /img2img)")
async def submit_img2img_job(body: Img2ImgRequest, request: Request):
    return _accepted(request, await run_in_threadpool(submit_img2img, request.app.state.ctx, body))


@router.post("/extra-single-image", status_code=202, response_model=JobStatus,
             summary="Queue an Extras job (body as POST /extra-single-image)")
async def submit_extras_job(body: ExtrasSingleImageRequest, request: Request):
    return _accepted(request, await run_in_threadpool(submit_extras_single, request.app.state.ctx, body))


@router.get("", response_model=JobList, summary="Recent, running and queued jobs, oldest first")
def list_jobs(request: Request):
    queue = request.app.state.ctx.jobs
    jobs = [job_status(job, _has_result(request, job)) for job in queue.list()]
    running = queue.current()
    return JobList(jobs=jobs, running=running.id if running else None, queued=queue.pending)


@router.get("/{job_id}", response_model=JobStatus, summary="State and progress of one job")
def get_job(job_id: str, request: Request):
    job = _job(request, job_id)
    return job_status(job, _has_result(request, job))


@router.get("/{job_id}/preview", response_model=JobPreview, summary="The job's latest live preview")
def get_preview(job_id: str, request: Request, known_id: int = Query(-1, description="skip the image when "
                                                                      "the preview is still this preview_id")):
    snap = _job(request, job_id).snapshot()
    image = None
    if snap.preview is not None and snap.preview_id != known_id:
        image = encode_png_base64(snap.preview)
    return JobPreview(id=job_id, preview_id=snap.preview_id, image=image)


@router.get("/{job_id}/result", response_model=ImageResponse | ExtrasSingleImageResponse,
            summary="The finished job's answer, as the synchronous route gives it",
            responses={202: {"model": JobStatus, "description": "not finished yet (after `wait` seconds)"}})
async def get_result(job_id: str, request: Request,
                     wait: float = Query(0.0, ge=0.0, le=MAX_WAIT_S, description="seconds to wait for the end")):
    job = _job(request, job_id)
    call = request.app.state.api_calls.get(job_id)
    if call is None and job.kind.startswith(EXTENSION_JOB_PREFIX):
        if not await wait_finished(job, timeout=wait):
            return JSONResponse(job_status(job, True).model_dump(), status_code=202)
        return _extension_result(job)
    if call is None:
        raise ApiError(404, "NotFound", f"job {job_id!r} was not submitted through the job API; it has no result here")
    if not await wait_finished(job, timeout=wait):
        return JSONResponse(job_status(job, True).model_dump(), status_code=202)
    try:
        return await run_in_threadpool(call.finish, job)
    finally:
        # An error answer (a failed job) is the result too: either way the client has it now.
        request.app.state.api_calls.mark_collected(job_id)


@router.delete("/{job_id}", response_model=JobStatus,
               summary="Cancel one job: a queued one is removed, a running one stops after its current step")
def cancel_job(job_id: str, request: Request):
    job = _job(request, job_id)
    request.app.state.ctx.jobs.cancel(job_id)
    return job_status(job, _has_result(request, job))


@router.post("/{job_id}/cancel", response_model=JobStatus, summary="Same as DELETE, for clients without DELETE")
def cancel_job_post(job_id: str, request: Request):
    return cancel_job(job_id, request)
