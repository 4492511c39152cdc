"""POST /dataset/v1/preprocess: a Preprocess run as a job of the app's queue (listed in /docs).

The answer is 202 with the job's status (its `id`); the job API follows it: `GET /sdapi/v1/jobs/{id}`
for progress (files done, eta) and `DELETE /sdapi/v1/jobs/{id}` to stop it between two files;
`GET /sdapi/v1/jobs/{id}/result` holds the report (`written` files, `skipped` files each with its
`reason`, `captions`, `debug`, `interrupted`). Bad values and folders are refused at once (422; 403 for a
folder outside the data dir under --listen), before anything is queued.
"""
from __future__ import annotations

from typing import Literal

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from modules.types import UserInputError

from .focal import FocalWeights
from .preprocess import PreprocessOptions, run_preprocess
from .preprocess_ops import AutoSizeOptions, SplitOptions
from .preprocess_paths import FolderNotAllowed, check_folders, confined, resolve_folder

JOBS_PATH = "/sdapi/v1/jobs"


class PreprocessRequest(BaseModel):
    source_dir: str = Field(description="folder of source images on the server (relative: inside the data dir)")
    destination_dir: str = Field(description="folder to write into; never the source or inside it")
    width: int = Field(512, ge=8, le=8192, description="target width in pixels")
    height: int = Field(512, ge=8, le=8192, description="target height in pixels")
    crop: Literal["focal", "center", "auto-size", "split", "none"] = Field(
        "center", description="focal: around faces/entropy/edges; center; auto-size: a multiple-of-64 size "
                              "near the image's ratio; split: oversized images into overlapping tiles (others "
                              "centre-cropped); none: resize only (resize_mode)")
    resize_mode: Literal["stretch", "fill"] = Field("stretch", description="crop none: stretch, or fit and pad")
    flip: bool = Field(False, description="also write a mirrored copy of every image")
    focal_face_weight: float | None = Field(None, ge=0, description="default: the setting")
    focal_entropy_weight: float | None = Field(None, ge=0, description="default: the setting")
    focal_edges_weight: float | None = Field(None, ge=0, description="default: the setting")
    focal_debug: bool = Field(False, description="write the focal analysis drawn on each image into "
                                                 "<destination>/focal_debug/")
    split_threshold: float = Field(0.5, ge=0, le=10, description="split when the long side exceeds the "
                                                                 "target's by this fraction")
    split_overlap: float = Field(0.2, ge=0, le=0.9, description="fraction of each tile repeated in the next")
    autosize_min_side: int = Field(384, ge=64, le=8192)
    autosize_max_side: int = Field(768, ge=64, le=8192)
    autosize_max_area: int = Field(640 * 640, ge=64 * 64)
    autosize_objective: Literal["area", "error"] = "area"
    repeats: int = Field(0, ge=0, le=10000, description="> 0: write into <destination>/<repeats>_<name>/ (kohya)")
    name: str = Field("", description="the kohya concept name")
    caption_filename: bool = Field(False, description="the source file name (cleaned) as each image's caption")
    existing_caption: Literal["ignore", "copy", "prepend", "append"] = Field(
        "ignore", description="a <source>.txt beside an image: ignore it, copy it, or put it before/after the "
                              "new caption")
    caption_extension: Literal[".txt", ".caption"] = ".txt"
    tagger: str = Field("", description="a tagger name (GET /tagger/v1/interrogators) to caption each image; "
                                        "empty: none")
    general_threshold: float = Field(0.35, ge=0, le=1)
    character_threshold: float = Field(0.85, ge=0, le=1)
    min_side: int = Field(32, ge=1, description="source images with a shorter side are skipped as too small")


class PreprocessAccepted(BaseModel):
    """202: the queued job, to follow at /sdapi/v1/jobs/{id}."""

    id: str
    kind: str
    state: str
    description: str
    position: int | None = None
    progress: float = 0.0
    eta_relative: float = 0.0
    textinfo: str = ""
    status_url: str
    result_url: str


def focal_defaults(api) -> FocalWeights:
    """The focal weights from the settings (preprocess_settings.py), the built-in ones where unset."""
    base = FocalWeights()

    def get(key: str, fallback: float) -> float:
        try:
            return float(api.setting(key))
        except Exception:  # noqa: BLE001 - settings not registered (an app that never called add_settings)
            return fallback

    from .preprocess_settings import EDGES_WEIGHT, ENTROPY_WEIGHT, FACE_WEIGHT

    return FocalWeights(get(FACE_WEIGHT, base.face), get(ENTROPY_WEIGHT, base.entropy), get(EDGES_WEIGHT, base.edges))


def options_from_request(api, req: PreprocessRequest) -> PreprocessOptions:
    """The run's options with folders resolved under the server's rules; raises UserInputError/ValueError."""
    limit = confined(bool(api.flag("listen", False)), bool(api.flag("enable_insecure_extension_access", False)))
    source = resolve_folder(req.source_dir, api.data_dir, confined=limit, field="source_dir")
    destination = resolve_folder(req.destination_dir, api.data_dir, confined=limit, field="destination_dir")
    defaults = focal_defaults(api)
    weights = FocalWeights(
        defaults.face if req.focal_face_weight is None else req.focal_face_weight,
        defaults.entropy if req.focal_entropy_weight is None else req.focal_entropy_weight,
        defaults.edges if req.focal_edges_weight is None else req.focal_edges_weight)
    options = PreprocessOptions(
        source, destination, width=req.width, height=req.height, crop=req.crop, resize_mode=req.resize_mode,
        flip=req.flip, focal_weights=weights, focal_debug=req.focal_debug,
        split=SplitOptions(req.split_threshold, req.split_overlap),
        autosize=AutoSizeOptions(min_side=req.autosize_min_side, max_side=req.autosize_max_side,
                                 max_area=req.autosize_max_area, objective=req.autosize_objective),
        repeats=req.repeats, name=req.name, caption_filename=req.caption_filename,
        existing_caption=req.existing_caption, caption_extension=req.caption_extension, min_side=req.min_side)
    options.validate()
    check_folders(options.source_dir, options.output_dir.resolve())
    return options


def make_captioner(api, tagger: str, general: float, character: float):
    """`image -> caption` with the named tagger of this extension's captions part, or None for no tagger."""
    if not tagger.strip():
        return None
    try:
        from .service import DatasetService
        from .taggers.options import TagOptions
    except ImportError as exc:
        raise UserInputError(f"tagger {tagger!r}: captioning is not available in this build ({exc})",
                             field="tagger") from None
    service = DatasetService.from_api(api)
    provider, name = service.tagger(tagger.strip())  # LookupError (404) when unknown
    if hasattr(provider, "unavailable"):  # missing weights: say so once, before the run
        raise UserInputError(provider.unavailable(), field="tagger")
    options = TagOptions(general_threshold=general, character_threshold=character)
    return lambda image: provider.caption(image, name, options)


def submit_preprocess(api, options: PreprocessOptions, captioner=None) -> str:
    """Queue the run on the app's job worker; returns the job id. The job's result is the report (JSON)."""
    def job(job_ctx):
        return run_preprocess(options, job_ctx, captioner).to_json()

    description = f"Preprocess {options.source_dir} -> {options.output_dir}"
    return api.submit_job("preprocess", job, description=description)


def accepted(api, job_id: str) -> PreprocessAccepted:
    job = api.job(job_id)
    snap = job.snapshot()
    return PreprocessAccepted(id=job.id, kind=job.kind, state=job.state, description=job.description,
                              position=job.position, progress=snap.progress, eta_relative=snap.eta_relative,
                              textinfo=snap.textinfo, status_url=f"{JOBS_PATH}/{job.id}",
                              result_url=f"{JOBS_PATH}/{job.id}/result")


def add_routes(api) -> None:
    """The preprocess part's registrations made in setup: its settings (focal weights) and its route."""
    from .preprocess_settings import add_settings

    add_settings(api)

    def preprocess(req: PreprocessRequest) -> PreprocessAccepted:
        """Queue a Preprocess run: answers **202** at once with the job (`id`); follow it at
        `/sdapi/v1/jobs/{id}` (progress, eta, DELETE to stop) and fetch the report at
        `/sdapi/v1/jobs/{id}/result`: `written` files and `skipped` files each with its `reason`.
        403: a folder outside the data dir under --listen; 404: unknown tagger; 422: bad values."""
        try:
            options = options_from_request(api, req)
            captioner = make_captioner(api, req.tagger, req.general_threshold, req.character_threshold)
        except FolderNotAllowed as exc:
            raise HTTPException(403, str(exc)) from None
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except (UserInputError, ValueError) as exc:
            raise HTTPException(422, str(exc)) from None
        job_id = submit_preprocess(api, options, captioner)
        status = accepted(api, job_id)
        return JSONResponse(status.model_dump(), status_code=202, headers={"Location": status.status_url})

    api.add_route("/dataset/v1/preprocess", preprocess, methods=("POST",))

