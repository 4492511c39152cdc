"""Models: checkpoints (list, refresh, unload, reload), VAEs, embeddings, hypernetworks."""
from __future__ import annotations

import threading

from fastapi import APIRouter, Request

from modules.context import load_initial_model
from modules.pipelines.registry import list_vae_files
from webui.api.calls import check_queue, raise_for_job, wait_finished
from webui.api.limits import ApiLimits
from webui.api.schemas import EmbeddingItem, EmbeddingsResponse, HypernetworkItem, SDModelItem, SDVaeItem

router = APIRouter()
_EMBEDDINGS_LOCK = threading.Lock()


@router.get("/sd-models", response_model=list[SDModelItem])
def sd_models(request: Request):
    ctx = request.app.state.ctx
    return [SDModelItem(title=ctx.checkpoints.title_of(info), model_name=info.api_model_name, hash=info.shorthash,
                        sha256=info.hash, filename=str(info.path), config=None)
            for info in ctx.checkpoints.list()]


@router.post("/refresh-checkpoints")
def refresh_checkpoints(request: Request):
    request.app.state.ctx.checkpoints.refresh()
    return {}


@router.get("/sd-vae", response_model=list[SDVaeItem])
def sd_vae(request: Request):
    paths = request.app.state.ctx.paths
    return [SDVaeItem(model_name=vae.name, filename=str(vae.path))
            for vae in list_vae_files(paths.vae_dir, paths.ckpt_dirs)]


@router.post("/refresh-vae")
def refresh_vae(request: Request):
    # The VAE list is read from disk on every request: nothing is cached that could go stale.
    return {}


@router.post("/unload-checkpoint")
async def unload_checkpoint(request: Request):
    """Free the loaded model (through the queue: a running job finishes first)."""
    ctx = request.app.state.ctx
    check_queue(ctx, ApiLimits.from_settings(ctx.settings))
    job = ctx.jobs.submit("unload-model", lambda job_ctx: ctx.pipelines.unload(), description="unload checkpoint")
    await wait_finished(job)
    raise_for_job(job)
    return {}


@router.post("/reload-checkpoint")
async def reload_checkpoint(request: Request):
    """Load the chosen checkpoint again (after unload-checkpoint, or to pick up a changed file)."""
    ctx = request.app.state.ctx

    def reload(job_ctx) -> None:
        if ctx.pipelines.current is None:
            load_initial_model(ctx)
        else:
            ctx.pipelines.reload()

    check_queue(ctx, ApiLimits.from_settings(ctx.settings))
    job = ctx.jobs.submit("load-model", reload, description="reload checkpoint")
    await wait_finished(job)
    raise_for_job(job)
    return {}


@router.get("/hypernetworks", response_model=list[HypernetworkItem])
def hypernetworks(request: Request):
    # Hypernetworks are not supported on diffusers; the list is empty rather than missing (clients ask).
    return []


def _embedding_db(request: Request, reload: bool = False):
    from modules.prompts.embeddings import EmbeddingDatabase

    ctx = request.app.state.ctx  # the database generation uses, so a refresh reaches the next job
    with _EMBEDDINGS_LOCK:
        db = ctx.embeddings
        if db is None:
            db = ctx.embeddings = EmbeddingDatabase(ctx.paths.embeddings_dir)
        elif reload:
            db.reload()
    return db


def _model_widths(ctx) -> tuple[int, ...] | None:
    current = ctx.pipelines.current
    if current is None:
        return None
    encoders = (getattr(current.pipe, "text_encoder", None), getattr(current.pipe, "text_encoder_2", None))
    return tuple(enc.config.hidden_size for enc in encoders if enc is not None) or None


@router.get("/embeddings", response_model=EmbeddingsResponse)
def embeddings(request: Request):
    """Textual-inversion embeddings usable with the loaded model (`loaded`) and the others (`skipped`)."""
    listing = _embedding_db(request).listing(_model_widths(request.app.state.ctx))  # one consistent reading
    split = listing.usable

    def item(name: str) -> EmbeddingItem:
        emb = listing.files.get(name)
        if emb is None:  # a file that could not be read
            return EmbeddingItem(shape=0, vectors=0)
        return EmbeddingItem(shape=max(emb.widths.values()), vectors=emb.vector_count)

    return EmbeddingsResponse(loaded={n: item(n) for n in split.loaded}, skipped={n: item(n) for n in split.skipped})


@router.post("/refresh-embeddings")
def refresh_embeddings(request: Request):
    _embedding_db(request, reload=True)
    return {}
