"""Preprocessors that run a network (depth, pose, soft edges, lines, normals, segmentation).

The weights are lllyasviel/Annotators' files, placed flat in models/ControlNet/annotators/ under the names
in specs.py. The networks come from the controlnet-aux package (Apache-2.0), imported only when such a
preprocessor runs and loaded from those local files (never from the hub). A missing file is a
UserInputError naming the exact path to place; it is downloaded only when the caller allows it.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modules.types import UserInputError

from .resize import as_rgb
from .specs import ANNOTATORS_REPO, ANNOTATORS_URL, ModuleSpec

INSTALL_HINT = ("pip install controlnet-aux (it needs torchvision, timm, scikit-image and "
                "opencv-python-headless: install a torchvision built for this torch first, or pip replaces torch)")


@dataclass
class DetectorCache:
    """Loaded detectors by (class, folder), so a second preview or generation does not reload the weights.
    One per registered preprocessor set (no module-level state)."""

    _detectors: dict[tuple[str, str], Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: tuple[str, str], load: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._detectors:
                self._detectors[key] = load()
            return self._detectors[key]

    def clear(self) -> None:
        with self._lock:
            self._detectors.clear()


def missing_files(spec: ModuleSpec, annotators_dir: Path) -> list[Path]:
    return [Path(annotators_dir) / name for name in spec.files if not (Path(annotators_dir) / name).is_file()]


def ensure_files(spec: ModuleSpec, annotators_dir: Path, allow_download: bool) -> None:
    """Raise UserInputError naming each missing weight file (after trying a download, when allowed)."""
    missing = missing_files(spec, annotators_dir)
    if not missing:
        return
    if allow_download:
        failure = _download(missing, Path(annotators_dir))
        missing = missing_files(spec, annotators_dir)
        if not missing:
            return
        raise UserInputError(f"{spec.label} needs {_paths(missing)}; downloading from {ANNOTATORS_URL} failed "
                             f"({failure}); download {_them(missing)} by hand and place {_them(missing)} there")
    urls = ", ".join(ANNOTATORS_URL + p.name for p in missing)
    raise UserInputError(f"{spec.label} needs {_paths(missing)}; download {_them(missing)} from {urls} and place "
                         f"{_them(missing)} there (or allow annotator downloads in Settings > ControlNet)")


def run_annotator(spec: ModuleSpec, image: np.ndarray, res: int, a: float, b: float, *, annotators_dir: Path,
                  allow_download: bool = False, cache: DetectorCache | None = None) -> np.ndarray:
    """The map of a weight-needing preprocessor as HxWx3 uint8; UserInputError when it cannot run here."""
    ensure_files(spec, annotators_dir, allow_download)
    runner = _RUNNERS.get(spec.name)
    if runner is None:
        raise UserInputError(f"{spec.label}: its weights are in place, but no installed library runs this network "
                             "(controlnet-aux has no UniFormer/OneFormer segmenter); use another preprocessor "
                             "or a segmentation map made elsewhere with module none")
    aux = _controlnet_aux(spec)
    cache = cache or DetectorCache()
    folder = str(Path(annotators_dir))
    detector_name, load_kwargs, call = runner
    detector = cache.get((detector_name, folder), lambda: getattr(aux, detector_name).from_pretrained(
        folder, **load_kwargs))
    result = call(detector, as_rgb(image), int(res), float(a), float(b))
    if isinstance(result, tuple):  # MiDaS with depth_and_normal answers (depth, normal)
        result = result[1]
    return as_rgb(np.asarray(result))


def _controlnet_aux(spec: ModuleSpec):
    try:
        import controlnet_aux
    except ImportError as exc:
        raise UserInputError(f"{spec.label} runs on the controlnet-aux package, which is not installed "
                             f"({exc.name or exc}): {INSTALL_HINT}") from None
    return controlnet_aux


def _download(missing: list[Path], folder: Path) -> str:
    """Fetch the files from lllyasviel/Annotators into `folder`; '' when all came, else the first error."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:
        return f"huggingface_hub is not installed ({exc})"
    folder.mkdir(parents=True, exist_ok=True)
    for path in missing:
        try:
            hf_hub_download(ANNOTATORS_REPO, path.name, local_dir=str(folder))
        except Exception as exc:  # offline mode, no network, HTTP errors: all the same to the user
            return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    return ""


def _paths(paths: list[Path]) -> str:
    return ", ".join(str(p) for p in paths)


def _them(paths: list[Path]) -> str:
    return "it" if len(paths) == 1 else "them"


def _common(res: int) -> dict[str, Any]:
    return {"detect_resolution": res, "image_resolution": res, "output_type": "np"}


_OPENPOSE = {"filename": "body_pose_model.pth", "hand_filename": "hand_pose_model.pth",
             "face_filename": "facenet.pth"}


def _openpose(body: bool, hand: bool, face: bool):
    return lambda d, img, res, a, b: d(img, include_body=body, include_hand=hand, include_face=face, **_common(res))


# module name -> (controlnet_aux detector class, from_pretrained file names, call(detector, img, res, a, b))
_RUNNERS: dict[str, tuple[str, dict[str, str], Callable[..., Any]]] = {
    "depth": ("MidasDetector", {"filename": "dpt_hybrid-midas-501f0c75.pt"},
              lambda d, img, res, a, b: d(img, **_common(res))),
    "normal_map": ("MidasDetector", {"filename": "dpt_hybrid-midas-501f0c75.pt"},
                   lambda d, img, res, a, b: d(img, depth_and_normal=True, bg_th=a, **_common(res))),
    "depth_zoe": ("ZoeDetector", {"filename": "ZoeD_M12_N.pt"}, lambda d, img, res, a, b: d(img, **_common(res))),
    "depth_leres": ("LeresDetector", {"filename": "res101.pth", "pix2pix_filename": "latest_net_G.pth"},
                    lambda d, img, res, a, b: d(img, thr_a=a, thr_b=b, boost=False, **_common(res))),
    "depth_leres++": ("LeresDetector", {"filename": "res101.pth", "pix2pix_filename": "latest_net_G.pth"},
                      lambda d, img, res, a, b: d(img, thr_a=a, thr_b=b, boost=True, **_common(res))),
    "normal_bae": ("NormalBaeDetector", {"filename": "scannet.pt"}, lambda d, img, res, a, b: d(img, **_common(res))),
    "openpose": ("OpenposeDetector", _OPENPOSE, _openpose(True, False, False)),
    "openpose_face": ("OpenposeDetector", _OPENPOSE, _openpose(True, False, True)),
    "openpose_faceonly": ("OpenposeDetector", _OPENPOSE, _openpose(False, False, True)),
    "openpose_full": ("OpenposeDetector", _OPENPOSE, _openpose(True, True, True)),
    "openpose_hand": ("OpenposeDetector", _OPENPOSE, _openpose(True, True, False)),
    "hed": ("HEDdetector", {"filename": "ControlNetHED.pth"}, lambda d, img, res, a, b: d(img, **_common(res))),
    "hed_safe": ("HEDdetector", {"filename": "ControlNetHED.pth"},
                 lambda d, img, res, a, b: d(img, safe=True, **_common(res))),
    "scribble_hed": ("HEDdetector", {"filename": "ControlNetHED.pth"},
                     lambda d, img, res, a, b: d(img, scribble=True, **_common(res))),
    "pidinet": ("PidiNetDetector", {"filename": "table5_pidinet.pth"},
                lambda d, img, res, a, b: d(img, **_common(res))),
    "pidinet_safe": ("PidiNetDetector", {"filename": "table5_pidinet.pth"},
                     lambda d, img, res, a, b: d(img, safe=True, **_common(res))),
    "pidinet_scribble": ("PidiNetDetector", {"filename": "table5_pidinet.pth"},
                         lambda d, img, res, a, b: d(img, scribble=True, **_common(res))),
    "mlsd": ("MLSDdetector", {"filename": "mlsd_large_512_fp32.pth"},
             lambda d, img, res, a, b: d(img, thr_v=a, thr_d=b, **_common(res))),
    "lineart": ("LineartDetector", {"filename": "sk_model.pth", "coarse_filename": "sk_model2.pth"},
                lambda d, img, res, a, b: d(img, coarse=False, **_common(res))),
    "lineart_coarse": ("LineartDetector", {"filename": "sk_model.pth", "coarse_filename": "sk_model2.pth"},
                       lambda d, img, res, a, b: d(img, coarse=True, **_common(res))),
    "lineart_anime": ("LineartAnimeDetector", {"filename": "netG.pth"},
                      lambda d, img, res, a, b: d(img, **_common(res))),
}
