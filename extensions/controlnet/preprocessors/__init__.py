"""ControlNet preprocessors ("modules" in sd-webui-controlnet's API): turn a picture into a control map.

`run_preprocessor(name, image, resolution, threshold_a, threshold_b, annotators_dir=...)` is the one entry:
names and UI aliases as sd-webui-controlnet spells them (`depth` / `depth_midas`), resolution in pixels of
the short side, thresholds in each module's own unit (None or negative: the module's default). The
weight-free ones run here with numpy/OpenCV; the others need files under models/ControlNet/annotators/.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from modules.types import UserInputError

from . import weight_free
from .annotators import DetectorCache, missing_files, run_annotator
from .specs import SPECS, ModuleSpec, Slider

__all__ = [
    "ALLOW_DOWNLOAD_SETTING", "DetectorCache", "ModuleSpec", "RegisteredPreprocessor", "Slider", "annotators_dir_for",
    "module_detail", "module_detail_json", "module_details", "module_names", "register_all", "resolve_alias",
    "run_preprocessor",
]

ALLOW_DOWNLOAD_SETTING = "control_net_allow_annotator_download"
MAX_RESOLUTION = 8192  # beyond this a map would need gigabytes; pixel perfect on a huge hires pass stays below
DEFAULT_RESOLUTION = 512

_WEIGHT_FREE: dict[str, Callable[[np.ndarray, int, float, float], np.ndarray]] = {
    "none": weight_free.identity,
    "invert": weight_free.invert,
    "canny": weight_free.canny,
    "threshold": weight_free.threshold,
    "scribble_xdog": weight_free.scribble_xdog,
    "lineart_standard": weight_free.lineart_standard,
    "blur_gaussian": weight_free.blur_gaussian,
    "tile_resample": weight_free.tile_resample,
    "shuffle": weight_free.shuffle,
    "color": weight_free.color_grid,
    "recolor_luminance": weight_free.recolor_luminance,
    "recolor_intensity": weight_free.recolor_intensity,
}
_BY_NAME: dict[str, ModuleSpec] = {s.name: s for s in SPECS}
_LOOKUP: dict[str, str] = {**{s.label.lower(): s.name for s in SPECS}, **{s.name.lower(): s.name for s in SPECS}}


def resolve_alias(name: str | None) -> str:
    """The module's internal name from its name or UI alias (any case); None or "" is "none"."""
    key = (name or "none").strip().lower()
    if key not in _LOOKUP:
        raise UserInputError(f"unknown ControlNet preprocessor {name!r}; known: {', '.join(module_names())}",
                             field="module")
    return _LOOKUP[key]


def module_names(alias_names: bool = False) -> list[str]:
    """All modules ("none" first, then by UI name), as internal names or as the UI shows them."""
    rest = sorted((s for s in SPECS if s.name != "none"), key=lambda s: s.label)
    return [(s.label if alias_names else s.name) for s in [_BY_NAME["none"], *rest]]


def module_detail(name: str) -> ModuleSpec:
    """The module's sliders (None = hidden) and the annotator files it needs."""
    return _BY_NAME[resolve_alias(name)]


def module_detail_json(name: str) -> dict:
    """As /controlnet/module_list's module_detail entry: visible sliders, resolution first."""
    spec = module_detail(name)
    sliders = [s.api_json() for s in (spec.resolution, spec.threshold_a, spec.threshold_b) if s is not None]
    return {"model_free": False, "sliders": sliders}


def module_details(alias_names: bool = False) -> dict[str, dict]:
    return {name: module_detail_json(name) for name in module_names(alias_names)}


def run_preprocessor(name: str, image: Image.Image, resolution: int | None, threshold_a: float | None,
                     threshold_b: float | None, *, annotators_dir: Path, allow_download: bool = False,
                     cache: DetectorCache | None = None) -> Image.Image:
    """The control map (RGB) of `image` by module `name`; UserInputError for an unknown module, a bad value
    or a missing annotator file (the message names the path to place)."""
    spec = module_detail(name)
    if not isinstance(image, Image.Image):
        raise UserInputError(f"{spec.label}: no input image", field="image")
    res = _resolution(spec, resolution)
    a = _threshold(threshold_a, spec.threshold_a)
    b = _threshold(threshold_b, spec.threshold_b)
    array = _rgb_array(image)
    if spec.name in _WEIGHT_FREE:
        result = _WEIGHT_FREE[spec.name](array, res, a, b)
    else:
        result = run_annotator(spec, array, res, a, b, annotators_dir=Path(annotators_dir),
                               allow_download=allow_download, cache=cache)
    return Image.fromarray(np.ascontiguousarray(result), "RGB")


def _resolution(spec: ModuleSpec, value: int | float | None) -> int:
    default = int(spec.resolution.value) if spec.resolution else DEFAULT_RESOLUTION
    if value is None or value <= 0:  # -1 is the API's "default"
        return default
    if value > MAX_RESOLUTION:
        raise UserInputError(f"{spec.label}: resolution {int(value)} is too large (at most {MAX_RESOLUTION})",
                             field="processor_res")
    return max(1, int(value))


def _threshold(value: float | None, slider: Slider | None) -> float:
    # Negative means "not set" (the API's -1; hidden UI sliders send it too): the module's default.
    if value is None or value < 0:
        return float(slider.value) if slider is not None else 0.0
    return float(value)


def _rgb_array(image: Image.Image) -> np.ndarray:
    from .resize import as_rgb

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        return as_rgb(np.asarray(image.convert("RGBA")))
    return np.asarray(image.convert("RGB"))


# -- registration with the extension API -------------------------------------------------------------------

@dataclass
class RegisteredPreprocessor:
    """What api.register_preprocessor offers other extensions: call it like run_preprocessor, minus the name."""

    spec: ModuleSpec
    annotators_dir: Path
    allow_download: Callable[[], bool]
    cache: DetectorCache

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def needs_weights(self) -> bool:
        return self.spec.needs_weights

    def missing_files(self) -> list[Path]:
        return missing_files(self.spec, self.annotators_dir)

    def __call__(self, image: Image.Image, resolution: int | None = None, threshold_a: float | None = None,
                 threshold_b: float | None = None) -> Image.Image:
        return run_preprocessor(self.spec.name, image, resolution, threshold_a, threshold_b,
                                annotators_dir=self.annotators_dir, allow_download=self.allow_download(),
                                cache=self.cache)


def annotators_dir_for(api) -> Path:
    """models/ControlNet/annotators, or <--controlnet-dir>/annotators when that flag is given."""
    controlnet_dir = api.flag("controlnet_dir")
    return Path(controlnet_dir or (api.models_dir / "ControlNet")) / "annotators"


def register_all(api, annotators_dir: Path | None = None) -> DetectorCache:
    """Register every module as a 'preprocessor' provider (UI alias as its alias) and the download setting;
    returns the detector cache the providers share (the routes and UI use it too)."""
    folder = Path(annotators_dir) if annotators_dir is not None else annotators_dir_for(api)
    api.add_setting(ALLOW_DOWNLOAD_SETTING, False,
                    "Download missing preprocessor (annotator) weights from huggingface.co/lllyasviel/Annotators",
                    section="ControlNet")
    cache = DetectorCache()

    def allow_download() -> bool:
        try:
            return bool(api.setting(ALLOW_DOWNLOAD_SETTING))
        except (KeyError, ValueError):  # settings store without it (a bare test api): the safe default
            return False

    for spec in SPECS:
        provider = RegisteredPreprocessor(spec, folder, allow_download, cache)
        aliases = (spec.label,) if spec.label != spec.name else ()
        api.register("preprocessor", spec.name, provider, aliases=aliases)
    return cache
