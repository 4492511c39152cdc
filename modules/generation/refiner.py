"""SDXL refiner: the base model runs the first `refiner_switch_at` of the schedule (diffusers
`denoising_end`), the refiner the rest (`denoising_start`) on the base's latents.

Kept simple on purpose: the refiner is loaded with the same loader and memory policy as the base, held
for the one job beside it (the base stays loaded and current), and freed when the job ends. A1111 swaps
models in and out instead; we trade memory for not reloading the base between jobs.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modules.types import GenerationRequest, UserInputError


@dataclass
class Refiner:
    """A refiner img2img pipeline held for one job, and the checkpoint it came from."""

    pipe: Any
    checkpoint: Any
    switch_at: float

    @property
    def name(self) -> str:
        return getattr(self.checkpoint, "title", None) or Path(str(self.checkpoint.path)).stem

    def close(self) -> None:
        """Drop the refiner's weights (the manager frees CUDA cache on its next switch)."""
        self.pipe = None


def supports_denoising_end(pipe) -> bool:
    """Only pipelines that can stop part-way (SDXL) can hand over to a refiner."""
    return "denoising_end" in inspect.signature(pipe.__call__).parameters


def load_refiner(request: GenerationRequest, model, env) -> Refiner:
    """Find and load request.refiner_checkpoint next to the base; raises UserInputError naming the field."""
    from diffusers import AutoPipelineForImage2Image

    from modules.pipelines.loading import load_pipeline
    from modules.pipelines.memory import apply_memory_policy, torch_dtype

    if not supports_denoising_end(model.pipe):
        raise UserInputError("the refiner needs an SDXL base model", field="refiner_checkpoint")
    info = env.checkpoints.find(request.refiner_checkpoint) if env.checkpoints is not None else None
    if info is None:
        raise UserInputError(f"no checkpoint matches {request.refiner_checkpoint!r}",
                             field="refiner_checkpoint")
    if str(info.path) == str(model.checkpoint.path):
        pipe = model.pipe  # refining with the base itself: no second copy
    else:
        pipe, _ = load_pipeline(info.path, dtype=torch_dtype(model.policy.dtype))
        apply_memory_policy(pipe, model.policy)
    if "denoising_start" not in inspect.signature(pipe.__call__).parameters:
        pipe = AutoPipelineForImage2Image.from_pipe(pipe)
    pipe.set_progress_bar_config(disable=True)
    return Refiner(pipe, info, request.refiner_switch_at)

