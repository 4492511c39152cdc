"""Models of the job API, our addition beyond A1111: submit -> job id -> status/progress/preview -> result."""
from __future__ import annotations

from pydantic import BaseModel, Field


class JobStatus(BaseModel):
    """Where a job stands. Times are seconds since the epoch; steps count within the current image batch."""

    id: str
    kind: str = Field(description="txt2img, img2img, extras, load-model, ...")
    description: str = ""
    state: str = Field(description="queued, running, done, failed, cancelled or interrupted")
    position: int | None = Field(None, description="jobs ahead of this one (0 = running); null once finished")
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    progress: float = Field(0.0, description="fraction of this job, 0..1")
    eta_relative: float = Field(0.0, description="seconds left, from the measured step rate")
    sampling_step: int = 0
    sampling_steps: int = 0
    job_no: int = Field(0, description="0-based index of the current image batch")
    job_count: int = Field(1, description="image batches in this job (n_iter)")
    textinfo: str = ""
    preview_id: int = Field(0, description="bumps with every new live preview")
    error: str | None = None
    has_result: bool = Field(False, description="GET .../result answers with images once the job is done")


class JobList(BaseModel):
    jobs: list[JobStatus]
    running: str | None = Field(None, description="id of the running job")
    queued: int = Field(description="jobs waiting behind the running one")


class JobPreview(BaseModel):
    id: str
    preview_id: int
    image: str | None = Field(None, description="base64 PNG of the latest live preview, null when none yet")
