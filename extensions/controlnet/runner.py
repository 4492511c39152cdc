"""A job's ControlNet units from request to UNet hook: parse, resolve models, prepare control maps, write
the infotext, and keep the run in `info.state` so the on_step hook can tell it the step."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modules.types import UserInputError

from . import infotext
from .apply import ActiveUnit, ControlRun, StepTracker, unet_controlled
from .control_image import preprocess, source_image
from .models import ControlNetLibrary
from .units import parse_units

STATE_KEY = "controlnet"


class ControlNetRunner:
    """What setup registers for generation: patch_pipeline and on_step, over one model library."""

    def __init__(self, library: ControlNetLibrary, annotators_dir: Path, extension: str = "controlnet",
                 preprocessor_cache: Any = None):
        self.library = library
        self.annotators_dir = Path(annotators_dir)
        self.extension = extension
        self.preprocessor_cache = preprocessor_cache

    def patch_pipeline(self, pipe, request, info):
        """The UNet hook for the request's active units, or None when it has none."""
        units = [(i, u) for i, u in enumerate(parse_units(_args(request, info, self.extension))) if u.active]
        if not units:
            return None
        return self._controlled(pipe, request, info, units)

    @contextlib.contextmanager
    def _controlled(self, pipe, request, info, units) -> Iterator[ControlRun]:
        unet = pipe.unet
        init = request.init_images[0] if request.mode != "txt2img" and request.init_images else None
        active = []
        for index, unit in units:
            entry = self.library.find(unit.model)
            if entry is None:
                raise UserInputError(
                    f"ControlNet unit {index}: no model {unit.model!r} in {self.library.folder}",
                    field="alwayson_scripts")
            # Check the image before loading the model: a missing image is the cheaper mistake to report.
            image = source_image(unit, index, init)
            controlnet = self.library.load(entry, device=unet.device, dtype=unet.dtype,
                                           unet_config=dict(unet.config))
            detected = preprocess(unit, index, image, request.width, request.height,
                                  annotators_dir=self.annotators_dir, cache=self.preprocessor_cache)
            active.append(ActiveUnit(index, unit, controlnet, detected))
            if info is not None:
                info.params[infotext.label(index)] = infotext.format_unit(unit, entry.title)
        run = ControlRun(active, StepTracker(max(1, int(request.steps))), cfg=float(request.cfg_scale) > 1.0,
                         scale_factor=int(getattr(pipe, "vae_scale_factor", 8) or 8))
        if info is not None:
            info.state[STATE_KEY] = run
        try:
            with unet_controlled(unet, run):
                yield run
        finally:
            if info is not None:
                info.state.pop(STATE_KEY, None)

    def on_step(self, step, info) -> None:
        run = info.state.get(STATE_KEY) if info is not None else None
        if run is not None:
            run.tracker.step_done(step.index, step.total)


def _args(request, info, extension: str) -> Any:
    # The API's alwayson_scripts key is matched case-insensitively before it gets here; the request may
    # still carry another spelling when built directly.
    extensions = getattr(request, "extensions", None) or {}
    for key, value in extensions.items():
        if key.lower() == extension.lower():
            return value.get("args") if isinstance(value, dict) else value
    return None
