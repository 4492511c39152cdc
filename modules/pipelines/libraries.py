"""The model libraries (diffusers, transformers, peft: 10+ s to import on a small CPU) are imported on the job
worker when the first model loads, after the server already answers, never during start-up.

diffusers' lazy module is not safe to resolve from two threads at once (seen as "cannot import name
'DDIMScheduler'" when the worker loaded a model while a request resolved a sampler): the worker resolves
every name the app uses here, in one thread, before any job uses them.
"""
from __future__ import annotations

import threading

# The import system is process-wide, so is this lock: a second caller waits for the first import to end.
_LOCK = threading.Lock()


def import_model_libraries() -> None:
    """Import diffusers, transformers and the parts of them the app uses (seconds the first time, then ~0)."""
    with _LOCK:
        import diffusers  # noqa: F401
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting  # noqa: F401

        import modules.pipelines.loading  # noqa: F401
        from modules.samplers import SAMPLERS

        for spec in SAMPLERS:
            spec.scheduler_cls  # noqa: B018 - resolves diffusers' lazy attribute now, on this thread
