"""HTTP routes for interrogation, captioning and the tag editor (FastAPI endpoints; listed in /docs).

- POST /sdapi/v1/interrogate            A1111: {image, model} -> {caption}
- GET  /tagger/v1/interrogators         sd-webui-wd14-tagger: {models: [...]}
- POST /tagger/v1/interrogate           sd-webui-wd14-tagger (picobyte's current shape):
                                        {image, model, threshold} -> {caption: {tag: {...}, rating: {...}}}
- POST /tagger/v1/unload-interrogators  sd-webui-wd14-tagger: frees the loaded models
- POST /dataset/v1/caption              caption a server folder: inline (200 with the report, as A1111's and
                                        the tagger extension's routes answer), or with `background: true` a
                                        job (202 + id; progress, cancel and the report at /sdapi/v1/jobs/{id})
- GET  /dataset/v1/tags?dir=...         tag frequencies of a folder
- POST /dataset/v1/tags                 bulk add/remove/replace/move_to_front, or undo
Errors: 404 unknown model or folder, 403 a folder outside the data dir with --listen, 422 bad values or
missing weights (the message names the files).
"""
from __future__ import annotations

import functools
from typing import Literal

from fastapi import HTTPException, Query
from pydantic import BaseModel, Field

from modules.types import UserInputError

from .captions import FILENAME, CaptionRequest
from .folders import FolderRefused
from .service import DatasetService, ModelNotFound, decode_image
from .tag_editor import BulkEdit, apply_edit, load_dataset, save, undo
from .taggers.options import TagOptions


class InterrogateRequest(BaseModel):
    image: str = Field("", description="base64 image (a data: URI prefix is allowed)")
    model: str = Field("clip", description="'clip', 'deepdanbooru' or a WD14 tagger name "
                                           "(GET /tagger/v1/interrogators)")


class InterrogateResponse(BaseModel):
    caption: str = Field(description="the prompt text: tags joined by ', '")


class TaggerInterrogateRequest(BaseModel):
    image: str = Field("", description="base64 image")
    model: str = Field(description="a name from GET /tagger/v1/interrogators")
    threshold: float = Field(0.0, ge=0, le=1, description="tags (general and character) with a confidence "
                                                            "above this are returned")
    queue: str = Field("", description="the extension's batch queues are not supported: leave empty")
    name_in_queue: str = Field("", description="ignored without a queue")


class TaggerInterrogateResponse(BaseModel):
    caption: dict[str, dict[str, float]] = Field(
        description="{'tag': {name: confidence}, 'rating': {name: confidence}}; names as in the model's CSV")


class InterrogatorsResponse(BaseModel):
    models: list[str]


class CaptionFolderRequest(BaseModel):
    dir: str = Field(description="a folder on the server (inside the data dir with --listen)")
    tagger: str = Field(FILENAME, description="a WD14 tagger name, 'deepdanbooru', 'clip', or 'filename'")
    mode: Literal["overwrite", "append", "skip"] = "overwrite"
    caption_extension: Literal[".txt", ".caption"] = ".txt"
    general_threshold: float = Field(0.35, ge=0, le=1)
    character_threshold: float = Field(0.85, ge=0, le=1)
    include_ratings: bool = False
    exclude_tags: list[str] = Field(default_factory=list)
    additional_tags: list[str] = Field(default_factory=list, description="put first in every caption")
    replace_underscores: bool = True
    escape_brackets: bool = True
    sort_by_confidence: bool = True
    max_tags: int = Field(0, ge=0, description="0: no limit")
    background: bool = Field(False, description="run as a job of the queue: answers 202 with the job id at "
                                                "once (as /dataset/v1/preprocess); the report is the job's result")


class SkippedFile(BaseModel):
    file: str
    reason: str


class CaptionFolderResponse(BaseModel):
    written: list[str]
    skipped: list[SkippedFile]


class TagCount(BaseModel):
    tag: str
    count: int


class TagsResponse(BaseModel):
    dir: str
    images: int
    tags: list[TagCount]
    backups: int = Field(description="saves that can be undone")


class TagsEditRequest(BaseModel):
    dir: str
    action: Literal["add", "remove", "replace", "move_to_front", "undo"]
    tags: list[str] = Field(default_factory=list)
    replace_with: str = Field("", description="replace: the new tag (empty removes the tags)")
    front: bool = Field(False, description="add: put the tags first")
    images: list[str] = Field(default_factory=list, description="image file names; empty: every image")
    caption_extension: Literal[".txt", ".caption"] = ".txt"


class TagsEditResponse(BaseModel):
    changed: list[str] = Field(description="caption files written (or restored by undo)")
    backup: str | None = Field(None, description="the backup id of this save (undo restores it)")


def _http_errors(fn):
    """Our exceptions as HTTP answers with the message verbatim."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HTTPException:
            raise
        except ModelNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except FolderRefused as exc:
            raise HTTPException(403, str(exc)) from None
        except FileNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        except LookupError as exc:
            raise HTTPException(409, str(exc)) from None
        except (UserInputError, ValueError) as exc:
            raise HTTPException(422, str(exc)) from None
    return wrapper


def _response(report) -> CaptionFolderResponse:
    return CaptionFolderResponse(written=report.written,
                                 skipped=[SkippedFile(file=f, reason=r) for f, r in report.skipped])


def add_routes(api, service: DatasetService) -> None:
    @_http_errors
    def interrogate(req: InterrogateRequest) -> InterrogateResponse:
        """A1111's interrogate: the image's caption from the named model ('clip', 'deepdanbooru' or a WD14
        tagger); 404 for an unknown model, 422 when its weights are missing (the message names them)."""
        provider, name = service.tagger(req.model)
        return InterrogateResponse(caption=provider.caption(decode_image(req.image), name))

    @_http_errors
    def tagger_interrogators() -> InterrogatorsResponse:
        """The WD14 taggers found in models/interrogators/ (sd-webui-wd14-tagger's route)."""
        return InterrogatorsResponse(models=service.taggers.wd14.models())

    @_http_errors
    def tagger_interrogate(req: TaggerInterrogateRequest) -> TaggerInterrogateResponse:
        """sd-webui-wd14-tagger's interrogate, in its current shape: every rating's confidence and every
        general/character tag above `threshold`, names as the model's CSV spells them."""
        if req.queue:
            raise UserInputError("queue: batch queues are not supported; send one image per request")
        provider, name = service.tagger(req.model)
        scores = provider.scores(decode_image(req.image), name)
        tags = {tag: p for tag, p in scores.tags().items() if p > req.threshold}
        return TaggerInterrogateResponse(caption={"tag": tags, "rating": scores.rating})

    @_http_errors
    def tagger_unload() -> str:
        """Free the loaded tagger models (they load again on the next request)."""
        return f"Successfully unload {service.taggers.unload()} model(s)"

    @_http_errors
    def caption(req: CaptionFolderRequest) -> CaptionFolderResponse:
        """Caption every image of a server folder with a tagger (or its file name); writes <image>.txt or
        .caption beside each. Mode overwrite, append (new tags after the old) or skip (keep existing).
        `background: true`: 202 with the job at once; follow /sdapi/v1/jobs/{id}, the report is its result."""
        options = TagOptions(req.general_threshold, req.character_threshold, req.include_ratings,
                             tuple(req.exclude_tags), tuple(req.additional_tags), req.replace_underscores,
                             req.escape_brackets, req.sort_by_confidence, req.max_tags)
        folder = service.folder(req.dir)
        request = CaptionRequest(folder, req.tagger, options, req.mode, req.caption_extension)
        if req.background:
            return _caption_job(request)
        return _response(service.caption(request))

    def _caption_job(request: CaptionRequest):
        from fastapi.responses import JSONResponse

        from .routes_preprocess import accepted

        if request.tagger != FILENAME:  # unknown tagger or missing weights: refused now, not in the job
            provider, _ = service.tagger(request.tagger)
            if hasattr(provider, "unavailable"):
                raise UserInputError(provider.unavailable())

        def job(job_ctx):
            def progress(done: int, total: int) -> None:
                job_ctx.check()  # stops between two images when the job is cancelled
                if done == 0:
                    job_ctx.set_total(total, 1)
                elif done <= total:
                    job_ctx.step(done - 1)
                job_ctx.textinfo = f"Caption {min(done + 1, total)}/{total}"

            return _response(service.caption(request, progress)).model_dump()

        job_id = api.submit_job("caption", job, description=f"Caption {request.folder}")
        status = accepted(api, job_id)
        return JSONResponse(status.model_dump(), status_code=202, headers={"Location": status.status_url})

    @_http_errors
    def tags(dir: str = Query(description="a folder on the server"),
             caption_extension: Literal[".txt", ".caption"] = ".txt") -> TagsResponse:
        """Tag frequencies of a folder's captions: how many images carry each tag, most frequent first."""
        from .tag_editor import backups

        folder = service.folder(dir)
        dataset = load_dataset(folder, caption_extension)
        return TagsResponse(dir=str(folder), images=len(dataset.entries), backups=len(backups(folder)),
                            tags=[TagCount(tag=t, count=c) for t, c in dataset.frequencies()])

    @_http_errors
    def edit_tags(req: TagsEditRequest) -> TagsEditResponse:
        """Bulk-edit a folder's captions (a backup is kept first), or undo the newest save."""
        folder = service.folder(req.dir)
        if req.action == "undo":
            return TagsEditResponse(changed=undo(folder))
        dataset = load_dataset(folder, req.caption_extension)
        edit = BulkEdit(req.action, tuple(req.tags), req.replace_with, req.front, tuple(req.images))
        changes = apply_edit(dataset, edit)
        backup = save(dataset, changes)
        index = dataset.by_name()
        return TagsEditResponse(changed=sorted(index[n].caption.name for n in changes), backup=backup)

    api.add_route("/sdapi/v1/interrogate", interrogate, methods=("POST",))
    api.add_route("/tagger/v1/interrogators", tagger_interrogators)
    api.add_route("/tagger/v1/interrogate", tagger_interrogate, methods=("POST",))
    api.add_route("/tagger/v1/unload-interrogators", tagger_unload, methods=("POST",))
    api.add_route("/dataset/v1/caption", caption, methods=("POST",))
    api.add_route("/dataset/v1/tags", tags)
    api.add_route("/dataset/v1/tags", edit_tags, methods=("POST",))
