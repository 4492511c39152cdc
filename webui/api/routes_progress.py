"""Progress of the running job (A1111's shape), interrupt and skip."""
from __future__ import annotations

import time

from fastapi import APIRouter, Request

from webui.api.convert import encode_png_base64
from webui.api.schemas import ProgressResponse

router = APIRouter()


def idle_state() -> dict:
    return {"skipped": False, "interrupted": False, "stopping_generation": False, "job": "", "job_count": 0,
            "job_timestamp": "0", "job_no": 0, "sampling_step": 0, "sampling_steps": 0}


def job_state(job, snap) -> dict:
    """A1111's `state` for a running job: job_count/job_no count image batches, steps are per batch."""
    started = time.strftime("%Y%m%d%H%M%S", time.localtime(job.started_at or job.created_at))
    return {
        "skipped": job.context.skip_requested,
        "interrupted": job.context.interrupted,
        "stopping_generation": False,
        "job": job.description or job.kind,
        "job_count": snap.images_total,
        "job_timestamp": started,
        "job_no": snap.image_index,
        "sampling_step": snap.step,
        "sampling_steps": snap.steps_total,
    }


@router.get("/progress", response_model=ProgressResponse)
def progress(request: Request, skip_current_image: bool = False):
    """The running job (idle: progress 0, job_count 0, as clients waiting for "ready" expect)."""
    job = request.app.state.ctx.jobs.current()
    if job is None:
        return ProgressResponse(progress=0.0, eta_relative=0.0, state=idle_state(), current_image=None,
                                textinfo=None)
    snap = job.snapshot()
    image = None
    if snap.preview is not None and not skip_current_image:
        image = encode_png_base64(snap.preview)
    return ProgressResponse(progress=snap.progress, eta_relative=snap.eta_relative, state=job_state(job, snap),
                            current_image=image, textinfo=snap.textinfo or None)


@router.post("/interrupt")
def interrupt(request: Request):
    """Stop the running job after its current step; images it finished are kept. Queued jobs go on."""
    request.app.state.ctx.jobs.interrupt()
    return {}


@router.post("/skip")
def skip(request: Request):
    """Abandon the running job's current image batch; it goes on with the next one."""
    request.app.state.ctx.jobs.skip()
    return {}
