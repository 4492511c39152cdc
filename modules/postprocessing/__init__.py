"""Postprocessing of finished images (Extras): upscalers, ordered steps and the Extras job. See extras.py,
steps.py and upscalers.py."""
from __future__ import annotations

from modules.postprocessing.extras import (
    SCALE_BY,
    SCALE_TO,
    ExtrasRequest,
    postprocess_image,
    registered_steps,
    request_from_values,
    run_extras,
    unavailable_upscalers,
    upscaler_names,
    validate_extras,
)
from modules.postprocessing.steps import ExtrasStep, PostprocessedImage
from modules.postprocessing.upscalers import UpscalerRegistry, UpscalerSpec, registry_for

__all__ = [
    "SCALE_BY", "SCALE_TO", "ExtrasRequest", "ExtrasStep", "PostprocessedImage", "UpscalerRegistry",
    "UpscalerSpec", "postprocess_image", "registered_steps", "registry_for", "request_from_values", "run_extras",
    "unavailable_upscalers", "upscaler_names", "validate_extras",
]
