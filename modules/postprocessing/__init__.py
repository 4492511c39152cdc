"""Postprocessing of finished images (Extras): upscalers and the Extras job. See extras.py and upscalers.py."""
from __future__ import annotations

from modules.postprocessing.extras import (
    SCALE_BY,
    SCALE_TO,
    ExtrasRequest,
    postprocess_image,
    request_from_values,
    run_extras,
    unavailable_upscalers,
    upscaler_names,
    validate_extras,
)
from modules.postprocessing.upscalers import UpscalerRegistry, UpscalerSpec, registry_for

__all__ = [
    "SCALE_BY", "SCALE_TO", "ExtrasRequest", "UpscalerRegistry", "UpscalerSpec", "postprocess_image",
    "registry_for", "request_from_values", "run_extras", "unavailable_upscalers", "upscaler_names", "validate_extras",
]
