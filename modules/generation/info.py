"""Per-image infotext from the request as it actually ran (resolved sampler, effective clip skip)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from modules.images.infotext import build_generation_params, format_infotext
from modules.types import GenerationRequest


def model_identity(model) -> tuple[str, str]:
    """(model name, short hash) of a LoadedModel's checkpoint; the hash is '' when the registry has none."""
    ckpt = getattr(model, "checkpoint", None)
    if ckpt is None:
        return "", ""
    name = getattr(ckpt, "model_name", None) or Path(str(ckpt.path)).stem
    shorthash = getattr(ckpt, "shorthash", None) or getattr(ckpt, "hash", None) or ""
    return str(name), str(shorthash)


def image_infotext(request: GenerationRequest, model, *, prompt: str, negative: str, seed: int, subseed: int,
                   schedule: str, extra: dict[str, Any]) -> str:
    """The infotext of one image; `request` carries the resolved sampler name and effective clip skip."""
    name, shorthash = model_identity(model)
    # "RNG" (the noise source) and "ENSD" come in `extra`, written only when not A1111's defaults.
    extra = {"Eta": request.eta, **extra}
    extra = {k: v for k, v in extra.items() if v is not None}
    params = build_generation_params(request, seed=seed, subseed=subseed, model_name=name,
                                     model_hash=shorthash, schedule_type=schedule, extra=extra)
    return format_infotext(prompt, negative, params)
