"""Model listing routes: sd-models, refresh-checkpoints."""
from __future__ import annotations

from fastapi import APIRouter, Request

from webui.api.schemas import SDModelItem

router = APIRouter()


@router.get("/sd-models", response_model=list[SDModelItem])
def sd_models(request: Request):
    ctx = request.app.state.ctx
    items = []
    for info in ctx.checkpoints.list():
        items.append(SDModelItem(
            title=ctx.checkpoints.title_of(info), model_name=info.api_model_name,
            hash=info.shorthash, sha256=info.hash, filename=str(info.path), config=None,
        ))
    return items


@router.post("/refresh-checkpoints")
def refresh_checkpoints(request: Request):
    request.app.state.ctx.checkpoints.refresh()
    return {}
