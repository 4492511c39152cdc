"""The preprocessor table: sd-webui-controlnet's module names (what API clients send as `module`), their UI
names ("aliases": `depth` is shown as `depth_midas`), slider labels, ranges and defaults, and the annotator
weight files each needs. Facts about its public behaviour, written down as data."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Slider:
    """One preprocessor slider: resolution (pixels, short side) or a threshold in the module's own unit."""

    label: str
    minimum: float
    maximum: float
    value: float
    step: float = 1.0

    def api_json(self) -> dict:
        """As sd-webui-controlnet's /controlnet/module_list module_detail answers a slider."""
        return {"name": self.label, "value": self.value, "min": self.minimum, "max": self.maximum, "step": self.step}


@dataclass(frozen=True)
class ModuleSpec:
    """One preprocessor. `files` are annotator weights under models/ControlNet/annotators/ (none: it runs
    offline with numpy/OpenCV alone); `resolution`/`threshold_a`/`threshold_b` None means hidden."""

    name: str
    label: str
    resolution: Slider | None
    threshold_a: Slider | None = None
    threshold_b: Slider | None = None
    files: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def needs_weights(self) -> bool:
        return bool(self.files)


RES = Slider("Resolution", 64, 2048, 512, 8)
_OPENPOSE_FILES = ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth")
_MIDAS = ("dpt_hybrid-midas-501f0c75.pt",)


def _spec(name, label=None, resolution=RES, a=None, b=None, files=(), tags=()) -> ModuleSpec:
    return ModuleSpec(name, label or name, resolution, a, b, tuple(files), tuple(tags))


SPECS: tuple[ModuleSpec, ...] = (
    # -- no weights: numpy/OpenCV (weight_free.py) ------------------------------------------------
    _spec("none", resolution=None),
    _spec("invert", "invert (from white bg & black line)", resolution=None,
          tags=("Canny", "Lineart", "Scribble", "MLSD")),
    _spec("canny", a=Slider("Low Threshold", 1, 255, 100), b=Slider("High Threshold", 1, 255, 200), tags=("Canny",)),
    _spec("threshold", a=Slider("Binarization Threshold", 0, 255, 127)),
    _spec("scribble_xdog", a=Slider("XDoG Threshold", 1, 64, 32), tags=("Scribble",)),
    _spec("lineart_standard", "lineart_standard (from white bg & black line)", tags=("Lineart",)),
    _spec("blur_gaussian", a=Slider("Sigma", 0.01, 64.0, 9.0, 0.01), tags=("Tile",)),
    _spec("tile_resample", resolution=None, a=Slider("Down Sampling Rate", 1.0, 8.0, 1.0, 0.01), tags=("Tile",)),
    # sd-webui-controlnet hides shuffle's resolution and runs it at 512.
    _spec("shuffle", resolution=None, tags=("Shuffle",)),
    _spec("color", "t2ia_color_grid", tags=("T2I-Adapter",)),
    _spec("recolor_luminance", resolution=None, a=Slider("Gamma Correction", 0.1, 2.0, 1.0, 0.001),
          tags=("Recolor",)),
    _spec("recolor_intensity", resolution=None, a=Slider("Gamma Correction", 0.1, 2.0, 1.0, 0.001),
          tags=("Recolor",)),
    # -- annotator weights (annotators.py) ---------------------------------------------------------
    _spec("depth", "depth_midas", files=_MIDAS, tags=("Depth",)),
    _spec("depth_zoe", files=("ZoeD_M12_N.pt",), tags=("Depth",)),
    _spec("depth_leres", a=Slider("Remove Near %", 0, 100, 0, 0.1), b=Slider("Remove Background %", 0, 100, 0, 0.1),
          files=("res101.pth", "latest_net_G.pth"), tags=("Depth",)),
    _spec("depth_leres++", a=Slider("Remove Near %", 0, 100, 0, 0.1),
          b=Slider("Remove Background %", 0, 100, 0, 0.1), files=("res101.pth", "latest_net_G.pth"), tags=("Depth",)),
    _spec("normal_map", "normal_midas", a=Slider("Normal Background Threshold", 0.0, 1.0, 0.4, 0.01), files=_MIDAS,
          tags=("NormalMap",)),
    _spec("normal_bae", files=("scannet.pt",), tags=("NormalMap",)),
    _spec("openpose", files=_OPENPOSE_FILES, tags=("OpenPose",)),
    _spec("openpose_face", files=_OPENPOSE_FILES, tags=("OpenPose",)),
    _spec("openpose_faceonly", files=_OPENPOSE_FILES, tags=("OpenPose",)),
    _spec("openpose_full", files=_OPENPOSE_FILES, tags=("OpenPose",)),
    _spec("openpose_hand", files=_OPENPOSE_FILES, tags=("OpenPose",)),
    _spec("hed", "softedge_hed", files=("ControlNetHED.pth",), tags=("SoftEdge",)),
    _spec("hed_safe", "softedge_hedsafe", files=("ControlNetHED.pth",), tags=("SoftEdge",)),
    _spec("scribble_hed", files=("ControlNetHED.pth",), tags=("Scribble",)),
    _spec("pidinet", "softedge_pidinet", files=("table5_pidinet.pth",), tags=("SoftEdge",)),
    _spec("pidinet_safe", "softedge_pidisafe", files=("table5_pidinet.pth",), tags=("SoftEdge",)),
    _spec("pidinet_scribble", "scribble_pidinet", files=("table5_pidinet.pth",), tags=("Scribble",)),
    _spec("mlsd", a=Slider("MLSD Value Threshold", 0.01, 2.0, 0.1, 0.01),
          b=Slider("MLSD Distance Threshold", 0.01, 20.0, 0.1, 0.01), files=("mlsd_large_512_fp32.pth",),
          tags=("MLSD",)),
    _spec("lineart", "lineart_realistic", files=("sk_model.pth", "sk_model2.pth"), tags=("Lineart",)),
    _spec("lineart_coarse", files=("sk_model.pth", "sk_model2.pth"), tags=("Lineart",)),
    _spec("lineart_anime", files=("netG.pth",), tags=("Lineart",)),
    _spec("segmentation", "seg_ufade20k", files=("upernet_global_small.pth",), tags=("Segmentation",)),
    _spec("oneformer_ade20k", "seg_ofade20k", files=("250_16_swin_l_oneformer_ade20k_160k.pth",),
          tags=("Segmentation",)),
    _spec("oneformer_coco", "seg_ofcoco", files=("150_16_swin_l_oneformer_coco_100ep.pth",), tags=("Segmentation",)),
)

# Where a missing annotator file can be downloaded from (the names above are this repository's).
ANNOTATORS_REPO = "lllyasviel/Annotators"
ANNOTATORS_URL = f"https://huggingface.co/{ANNOTATORS_REPO}/resolve/main/"
