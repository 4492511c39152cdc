"""User upscaler models (.pth / .safetensors: ESRGAN, Real-ESRGAN, SwinIR, HAT, DAT, ...) through spandrel.

Files are looked for in A1111's folders under models/: ESRGAN (or --esrgan-models-path), RealESRGAN,
SwinIR, DAT, HAT. Each file is one row named by its file stem, as A1111 names them ("4x-UltraSharp").
spandrel reads the file and recognises the architecture from the weights' names and shapes; a file it
cannot read or does not know, or a model that is no upscaler (face restoration, inpainting), is listed
as unavailable with the reason instead.

Large images run in tiles (settings `ESRGAN_tile`, pixels of input per tile, 0 = no tiling, and
`ESRGAN_tile_overlap`), see tiling.py, so memory stays bounded whatever the image size.

spandrel imports torchvision for two architectures we never use as upscalers (LaMa inpainting and
RestoreFormer); where torchvision is missing or does not load with this torch build (the CPU wheel is
not on PyPI), those two get a stand-in that raises on use, so every upscaler architecture still loads.
"""
from __future__ import annotations

import contextlib
import enum
import logging
import sys
import threading
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from modules.postprocessing.upscalers import UpscalerRegistry, UpscalerSpec

log = logging.getLogger(__name__)

MODEL_FOLDERS = ("ESRGAN", "RealESRGAN", "SwinIR", "DAT", "HAT")
MODEL_SUFFIXES = (".pth", ".pt", ".safetensors")
TILE_SETTING, OVERLAP_SETTING = "ESRGAN_tile", "ESRGAN_tile_overlap"
DEFAULT_TILE, DEFAULT_OVERLAP = 192, 8  # A1111's defaults
UPSCALER_PURPOSES = ("SR",)  # spandrel's purpose of super-resolution models

_IMPORT_LOCK = threading.Lock()


def import_spandrel():
    """The spandrel module; raises ImportError (with the reason) when it is not installed."""
    with _IMPORT_LOCK:
        if sys.modules.get("spandrel") is not None:
            return sys.modules["spandrel"]
        try:
            import spandrel
            return spandrel
        except ImportError as exc:
            if not (exc.name or "").startswith("torchvision"):
                raise
        except RuntimeError as exc:  # a torchvision wheel built for another torch: its ops do not register
            if "torchvision" not in str(exc):
                raise
        _forget("spandrel", "torchvision")
        stubs = _torchvision_stand_in()
        sys.modules.update(stubs)
        try:
            import spandrel
        finally:
            for name in stubs:  # the stand-in is spandrel's alone: nobody else may take it for torchvision
                sys.modules.pop(name, None)
        log.info("spandrel loaded without torchvision (LaMa and RestoreFormer models are not usable)")
        return spandrel


def _forget(*prefixes: str) -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in prefixes]:
        del sys.modules[name]


def _torchvision_stand_in() -> dict[str, types.ModuleType]:
    def missing(*_args, **_kwargs):
        raise RuntimeError("this model needs torchvision, which is not installed (or not usable) here")

    class InterpolationMode(enum.Enum):
        NEAREST = "nearest"
        BILINEAR = "bilinear"
        BICUBIC = "bicubic"

    root, transforms, functional = (types.ModuleType(n) for n in
                                    ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"))
    functional.InterpolationMode, functional.rotate, functional.normalize = InterpolationMode, missing, missing
    root.transforms, transforms.functional = transforms, functional
    return {m.__name__: m for m in (root, transforms, functional)}


def model_files(folders: Iterable[Path]) -> list[Path]:
    """Model files in `folders` (and their sub-folders), sorted by name, each path once."""
    seen: dict[Path, None] = {}
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() in MODEL_SUFFIXES and path.is_file():
                    seen.setdefault(path.resolve(), None)
    return sorted(seen, key=lambda p: (p.stem.lower(), str(p)))


@dataclass(frozen=True)
class ModelInfo:
    """What spandrel recognised in a file: architecture name and the model's factor (pixels out per in)."""

    path: Path
    architecture: str
    scale: int


def inspect(path: Path) -> ModelInfo:
    """Read the file and recognise its model; raises ValueError with a short reason when it is no upscaler."""
    descriptor = load_descriptor(path)
    return ModelInfo(path, descriptor.architecture.name, int(descriptor.scale))


def load_descriptor(path: Path, device: str = "cpu"):
    """spandrel's ImageModelDescriptor for `path`, in eval mode on `device`; ValueError when unusable."""
    spandrel = import_spandrel()
    try:
        descriptor = spandrel.ModelLoader(device=device).load_from_file(str(path))
    except spandrel.UnsupportedModelError:
        raise ValueError("spandrel does not know this model's architecture") from None
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: its reason, not a crash
        raise ValueError(f"cannot read the file ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.purpose not in UPSCALER_PURPOSES:
        raise ValueError(f"a {descriptor.architecture.name} model ({descriptor.purpose}), not an upscaler")
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise ValueError(f"a model for {descriptor.input_channels}-channel images; upscalers take RGB")
    descriptor.model.eval()
    return descriptor


class SpandrelUpscaler:
    """One model file as an upscaler row: loaded on first use and kept while it is the one in use."""

    def __init__(self, info: ModelInfo, cache: ModelCache, tiling: Callable[[], tuple[int, int]]):
        self.info = info
        self._cache = cache
        self._tiling = tiling  # -> (tile, overlap) in input pixels, read per image so settings apply at once

    def __call__(self, image: Image.Image, factor: float) -> Image.Image:
        import numpy as np
        import torch

        from modules.postprocessing.tiling import upscale_tiled

        alpha = image.getchannel("A") if "A" in image.getbands() else None
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        tile, overlap = self._tiling()
        with self._cache.use(self.info.path) as descriptor:
            device, dtype = descriptor.device, descriptor.dtype
            tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(device=device, dtype=dtype)
            with torch.inference_mode():
                out = upscale_tiled(descriptor, tensor, descriptor.scale, tile, overlap)
        pixels = (out[0].permute(1, 2, 0).float().clamp(0, 1).cpu().numpy() * 255.0).round().astype(np.uint8)
        result = Image.fromarray(pixels, "RGB")
        if alpha is not None:  # the network knows no transparency: enlarge the alpha plane plainly
            result.putalpha(alpha.resize(result.size, Image.Resampling.LANCZOS))
        elif image.mode != "RGB":
            result = result.convert(image.mode)
        return result


class ModelCache:
    """Keeps the most recently used model loaded (one: upscaler weights are tens to hundreds of MB)."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._descriptor = None

    @contextlib.contextmanager
    def use(self, path: Path):
        """`with cache.use(path) as descriptor:` the model of `path`, loaded if another one was; one image
        at a time (a model is not re-entrant on one device)."""
        with self._lock:
            if self._path != path:
                self._descriptor = self._path = None  # free the old weights before the new ones load
                self._descriptor = load_descriptor(path, self.device)
                self._path = path
            yield self._descriptor


def register(registry: UpscalerRegistry, folders: Iterable[Path], *, device: str | Callable[[], str] = "cpu",
             tiling: Callable[[], tuple[int, int]] = lambda: (DEFAULT_TILE, DEFAULT_OVERLAP)) -> int:
    """Add a row per usable model file in `folders`; others are marked unavailable with the reason.
    `device` may be a function, called only when there are files. Returns the number of rows added."""
    files = model_files(folders)
    if not files:
        return 0
    try:
        import_spandrel()
    except ImportError as exc:
        for path in files:
            registry.mark_unavailable(path.stem, f"spandrel is not installed ({exc}); pip install spandrel")
        return 0
    cache, added, taken = ModelCache(device() if callable(device) else device), 0, set(registry.names())
    for path in files:
        name = path.stem if path.stem not in taken else f"{path.stem} ({path.parent.name})"
        taken.add(name)
        try:
            info = inspect(path)
        except ValueError as exc:
            registry.mark_unavailable(name, f"{path.name}: {exc}")
            log.warning("Upscaler model %s is not usable: %s", path, exc)
            continue
        registry.register(UpscalerSpec(name, SpandrelUpscaler(info, cache, tiling), native_scale=info.scale,
                                       model_name=info.architecture, model_path=str(path)))
        added += 1
    return added


def folders_for(paths) -> list[Path]:
    """A1111's upscaler folders of this app (ESRGAN honours --esrgan-models-path)."""
    models = Path(paths.models_dir)
    esrgan = Path(getattr(paths, "esrgan_dir", models / "ESRGAN"))
    return [esrgan, *(models / name for name in MODEL_FOLDERS if name != "ESRGAN")]


def tiling_from(settings) -> Callable[[], tuple[int, int]]:
    """(tile, overlap) from the settings at each call; A1111's defaults without a store."""
    def read() -> tuple[int, int]:
        if settings is None:
            return DEFAULT_TILE, DEFAULT_OVERLAP
        try:
            return int(settings.get(TILE_SETTING)), int(settings.get(OVERLAP_SETTING))
        except Exception:  # noqa: BLE001 - a store without these settings (tests, scripts)
            return DEFAULT_TILE, DEFAULT_OVERLAP
    return read
