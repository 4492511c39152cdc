"""Read-only lists clients use to fill their menus: samplers, schedulers, upscalers, styles, scripts,
extensions, memory."""
from __future__ import annotations

from fastapi import APIRouter, Request

from modules.generation.hires import LATENT_UPSCALERS
from modules.postprocessing import registry_for
from modules.postprocessing.realesrgan import list_models as realesrgan_models_of
from modules.samplers import list_samplers, list_schedulers
from webui.api.schemas import (
    ExtensionItem,
    FaceRestorerItem,
    LatentUpscalerModeItem,
    MemoryResponse,
    PromptStyleItem,
    RealesrganItem,
    SamplerItem,
    SchedulerItem,
    ScriptInfo,
    ScriptsList,
    UpscalerItem,
)
from webui.api.scripts import extensions_list, scripts_list
from webui.api.scripts import script_info as script_info_rows

router = APIRouter()


@router.get("/samplers", response_model=list[SamplerItem])
def samplers():
    return list_samplers()


@router.get("/schedulers", response_model=list[SchedulerItem])
def schedulers():
    return list_schedulers()


@router.get("/upscalers", response_model=list[UpscalerItem])
def upscalers(request: Request):
    return [spec.api_row() for spec in registry_for(request.app.state.ctx).specs()]


@router.get("/latent-upscale-modes", response_model=list[LatentUpscalerModeItem])
def latent_upscale_modes():
    return [{"name": name} for name in LATENT_UPSCALERS]


@router.get("/realesrgan-models", response_model=list[RealesrganItem])
def realesrgan_models(request: Request):
    return realesrgan_models_of(registry_for(request.app.state.ctx))


@router.get("/face-restorers", response_model=list[FaceRestorerItem])
def face_restorers():
    # No GFPGAN/CodeFormer in this build: an empty list tells clients not to offer face restoration.
    return []


@router.get("/prompt-styles", response_model=list[PromptStyleItem])
def prompt_styles(request: Request):
    styles = request.app.state.ctx.styles
    if styles is None:
        return []
    return [PromptStyleItem(name=s.name, prompt=s.prompt, negative_prompt=s.negative_prompt)
            for s in styles.styles.values()]


@router.get("/scripts", response_model=ScriptsList)
def scripts(request: Request):
    """Selectable scripts per tab, lower-case titles (A1111)."""
    return ScriptsList(**scripts_list(request.app.state.ctx))


@router.get("/script-info", response_model=list[ScriptInfo])
def script_info(request: Request):
    return [ScriptInfo(**row) for row in script_info_rows(request.app.state.ctx)]


@router.get("/extensions", response_model=list[ExtensionItem])
def extensions(request: Request):
    return [ExtensionItem(**row) for row in extensions_list(request.app.state.ctx)]


@router.get("/memory", response_model=MemoryResponse)
def memory():
    """RAM of this machine and CUDA memory of the torch device, in bytes (A1111's keys)."""
    import psutil

    vm = psutil.virtual_memory()
    ram = {"free": vm.available, "used": vm.total - vm.available, "total": vm.total}
    return MemoryResponse(ram=ram, cuda=_cuda_memory())


def _cuda_memory() -> dict:
    try:
        import torch

        if not torch.cuda.is_available():
            return {"error": "unavailable"}
        free, total = torch.cuda.mem_get_info()
        stats = torch.cuda.memory_stats()
    except Exception as exc:  # noqa: BLE001 - a broken driver must not break the endpoint
        return {"error": str(exc)}

    def pair(name: str) -> dict:
        return {"current": stats.get(f"{name}_bytes.all.current", 0), "peak": stats.get(f"{name}_bytes.all.peak", 0)}

    return {
        "system": {"free": free, "used": total - free, "total": total},
        "active": pair("active"), "allocated": pair("allocated"), "reserved": pair("reserved"),
        "inactive": pair("inactive_split"),
        "events": {"retries": stats.get("num_alloc_retries", 0), "oom": stats.get("num_ooms", 0)},
    }
