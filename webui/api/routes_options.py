"""Settings as A1111's /options (GET all, POST some), and the command-line flags."""
from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from starlette.concurrency import run_in_threadpool

from modules.context import switch_model
from webui.api.calls import check_queue, raise_for_job, wait_finished
from webui.api.errors import ApiError
from webui.api.limits import LOCKED_SETTINGS, ApiLimits

router = APIRouter()
MODEL_KEY = "sd_model_checkpoint"
# Keys GET /options reports that describe state rather than settings; a client posting back what it
# read must not fail on them.
READ_ONLY = frozenset({"sd_checkpoint_hash"})
SECRET_FLAGS = ("auth", "api_auth", "gradio_auth")


@router.get("/options")
def get_options(request: Request) -> dict[str, Any]:
    """Every setting with its value; sd_model_checkpoint is the loaded model's title when one is loaded."""
    ctx = request.app.state.ctx
    options = ctx.settings.as_dict()
    current = ctx.pipelines.current
    if current is not None:
        options[MODEL_KEY] = ctx.checkpoints.title_of(current.checkpoint)
    options["sd_checkpoint_hash"] = getattr(current.checkpoint, "hash", None) if current is not None else None
    return options


@router.post("/options")
async def set_options(request: Request, body: Annotated[dict[str, Any], Body()]):
    """Validate every key and value first, then switch the model (through the job queue, so it waits
    behind running jobs) and store the rest; nothing changes when anything is wrong."""
    ctx = request.app.state.ctx
    # Matching a hash may hash every checkpoint, and storing a value runs listeners that take the
    # pipeline manager's lock (held for a whole model load): all of it runs off the event loop.
    changes, job = await run_in_threadpool(_validate_and_submit, ctx, body)
    if job is not None:
        await wait_finished(job)
        raise_for_job(job)
    if changes:
        await run_in_threadpool(ctx.settings.update, changes)
    # A1111 answers null (FastAPI sends null for None)


def _validate_and_submit(ctx, body: dict[str, Any]):
    """(the setting changes to store, the model-switch job or None); raises ApiError for a bad body."""
    specs = {spec.key for spec in ctx.settings.specs()}
    stored = ctx.settings.as_dict()
    unknown = sorted(k for k in body if k not in specs and k not in stored and k not in READ_ONLY)
    if unknown:
        raise ApiError(422, "UserInputError", f"unknown option{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    # Keys stored by an extension that is not loaded now have no type to check: kept as they are.
    changes = {k: v for k, v in body.items() if k in specs and k != MODEL_KEY}
    for key, value in changes.items():
        try:
            coerced = ctx.settings.coerce(key, value)
        except ValueError as exc:
            raise ApiError(422, "UserInputError", str(exc)) from None
        # Posting back an unchanged value is fine (clients send all they read); changing one is not.
        if key in LOCKED_SETTINGS and coerced != ctx.settings.get(key):
            raise ApiError(403, "Forbidden", f"{key} cannot be changed through the API; set it in the UI's "
                                             "Settings tab or in config.json (see SECURITY.md)")

    query = body.get(MODEL_KEY)
    if not query:
        return changes, None
    info = ctx.checkpoints.find(str(query), compute_hashes=True)
    if info is None:
        raise ApiError(422, "UserInputError", f"{MODEL_KEY}: no checkpoint matches {str(query)!r}")
    check_queue(ctx, ApiLimits.from_settings(ctx.settings))
    job = ctx.jobs.submit("load-model", lambda job_ctx: switch_model(ctx, info.name), description=f"load {info.name}")
    return changes, job


@router.get("/cmd-flags")
def cmd_flags(request: Request) -> dict[str, Any]:
    """The flags this server runs with (passwords masked: A1111 shows them, we do not)."""
    flags = dataclasses.asdict(request.app.state.ctx.flags)
    # Flags extensions' preload.py added are listed beside ours, as in A1111 (where both are one namespace).
    flags = {**dict(flags.get("extension_flags") or ()), **flags}
    for name in SECRET_FLAGS:
        if flags.get(name):
            flags[name] = "***"
    return flags
