"""What every generation mode shares: the job environment, settings lookup, step-callback chaining, and the
context managers that change a pipeline for one call and restore it (scheduler, seamless tiling)."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from modules.settings import DEFAULT_SPECS

_DEFAULTS = {spec.key: spec.default for spec in DEFAULT_SPECS}

StepCallback = Callable[[Any, int, Any, dict], dict]


@dataclass
class GenerationEnv:
    """Everything a job uses besides the model and request; each part may be None in tests and scripts."""

    settings: Any = None  # anything with .get(key): the Settings store or a per-job overlay
    pipelines: Any = None  # PipelineManager: derived img2img/inpaint pipelines share the loaded weights
    checkpoints: Any = None  # CheckpointRegistry: finds the refiner checkpoint
    styles: Any = None  # prompts.styles store; None = no saved styles
    embeddings: Any = None  # prompts.embeddings.EmbeddingDatabase; None = no textual inversion
    hooks: Any = None  # extensions.hooks.HookRegistry: batch/image/step hook points; None = no extensions
    info: Any = None  # extensions.hooks.GenerationInfo of the job the hooks see
    upscalers: Any = None  # postprocessing.UpscalerRegistry: model upscalers for hires fix; None = resamplers

    def setting(self, key: str) -> Any:
        """The setting's current value, or its default when no store is attached."""
        if self.settings is not None:
            return self.settings.get(key)
        return _DEFAULTS[key]


def derived_pipeline(model, task: str, env: GenerationEnv):
    """The pipeline for 'txt2img', 'img2img' or 'inpaint' over `model`'s weights (no copies)."""
    manager = env.pipelines
    if manager is not None and getattr(manager, "current", None) is model:
        return manager.pipeline_for(task)
    # A model the manager does not hold (tests, the refiner): derive directly, sharing the modules.
    base = model.pipe
    if task in ("txt2img", getattr(base, "_webui_task", "txt2img")):  # as PipelineManager.pipeline_for
        return base
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

    factory = {"txt2img": AutoPipelineForText2Image, "img2img": AutoPipelineForImage2Image,
               "inpaint": AutoPipelineForInpainting}[task]
    derived = factory.from_pipe(base)
    derived.set_progress_bar_config(disable=True)
    return derived


def chain_callbacks(*callbacks: StepCallback | None) -> StepCallback | None:
    """One callback_on_step_end running each given callback in turn; tensors one returns go to the next."""
    active = [cb for cb in callbacks if cb is not None]
    if not active:
        return None

    def run(pipe, step: int, timestep, tensors: dict) -> dict:
        changed: dict = {}
        for cb in active:
            out = cb(pipe, step, timestep, {**tensors, **changed}) or {}
            changed.update(out)
        return changed

    return run


def callback_tensor_names(pipe, *wanted: list[str] | None) -> list[str]:
    """The tensor names to request from the pipeline: "latents" plus what callbacks want, if it has them."""
    names = ["latents"]
    for group in wanted:
        names += [n for n in group or () if n not in names]
    allowed = getattr(pipe, "_callback_tensor_inputs", names)
    return [n for n in names if n in allowed]


@contextlib.contextmanager
def scheduler_swapped(pipe, scheduler) -> Iterator[None]:
    """Use `scheduler` for one call; the model keeps its own scheduler for the next job."""
    previous = pipe.scheduler
    pipe.scheduler = scheduler
    try:
        yield
    finally:
        pipe.scheduler = previous


@contextlib.contextmanager
def seamless_tiling(pipe, enabled: bool = True) -> Iterator[None]:
    """Circular padding in every Conv2d of the UNet and VAE, so images tile; restores zeros padding."""
    import torch

    convs = []
    if enabled:
        for part in (getattr(pipe, "unet", None), getattr(pipe, "vae", None)):
            if part is not None:
                convs += [m for m in part.modules() if isinstance(m, torch.nn.Conv2d)]
    saved = [(conv, conv.padding_mode) for conv in convs]
    try:
        for conv in convs:
            # Conv2d pads with F.pad when padding_mode is not 'zeros', so changing the attribute is enough.
            conv.padding_mode = "circular"
        yield
    finally:
        for conv, mode in saved:
            conv.padding_mode = mode


def unet_dtype(pipe) -> torch.dtype:
    """The dtype latents must have for this pipeline (pipelines move latents, they do not cast them)."""
    import torch

    unet = getattr(pipe, "unet", None)
    return unet.dtype if unet is not None else torch.float32

