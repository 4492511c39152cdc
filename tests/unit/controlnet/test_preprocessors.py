"""ControlNet preprocessors (extensions/controlnet/preprocessors): weight-free maps on synthetic pictures,
compared with independent OpenCV/numpy references; names and aliases as sd-webui-controlnet's API uses them;
weight-needing modules without their file name the exact path to place."""
from __future__ import annotations

import importlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from modules.extensions.loader import import_extension_package, package_name
from modules.paths import BUILTIN_EXTENSIONS_DIR
from modules.types import UserInputError

import_extension_package("controlnet", BUILTIN_EXTENSIONS_DIR / "controlnet")
pp = importlib.import_module(f"{package_name('controlnet')}.preprocessors")

WEIGHT_FREE = ("none", "invert", "canny", "threshold", "scribble_xdog", "lineart_standard", "blur_gaussian",
               "tile_resample", "shuffle", "color", "recolor_luminance", "recolor_intensity")


def drawing(width: int = 100, height: int = 50) -> Image.Image:
    """Black shapes and a coloured stroke on white: edges, lines and flat areas."""
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([width // 5, height // 5, width // 2, height * 4 // 5], fill="black")
    d.ellipse([width * 3 // 5, height // 4, width * 9 // 10, height * 3 // 4], fill=(200, 30, 30))
    d.line([0, height - 3, width - 1, 2], fill=(20, 20, 160), width=2)
    return img


def run(name, image, res=None, a=None, b=None, folder: Path = Path("/nonexistent/annotators")):
    return np.asarray(pp.run_preprocessor(name, image, res, a, b, annotators_dir=folder))


def test_canny_equals_cv2_canny_after_the_modules_resize():
    img = drawing(100, 50)
    # Short side 50 -> 128: 256x128, a multiple of 64, so the module's edge padding changes nothing.
    reference = cv2.Canny(cv2.resize(np.asarray(img), (256, 128), interpolation=cv2.INTER_CUBIC), 100, 200)
    out = run("canny", img, 128, 100, 200)
    assert out.shape == (128, 256, 3)
    assert (out[:, :, 0] == out[:, :, 1]).all() and (out[:, :, 0] == out[:, :, 2]).all()
    assert np.array_equal(out[:, :, 0], reference)
    assert 0.01 < (reference > 0).mean() < 0.3  # a real edge map, not empty or full
    # -1 / None are the module's defaults (100, 200); other thresholds give another map.
    assert np.array_equal(run("canny", img, 128, -1, -1), out)
    loose = run("canny", img, 128, 1, 2)
    assert np.array_equal(loose[:, :, 0], cv2.Canny(cv2.resize(np.asarray(img), (256, 128),
                                                                interpolation=cv2.INTER_CUBIC), 1, 2))
    assert (loose > 0).sum() > (out > 0).sum()


def test_canny_shrinks_with_area_filter_and_keeps_the_aspect():
    img = drawing(256, 128)
    out = run("canny", img, 64)
    reference = cv2.Canny(cv2.resize(np.asarray(img), (128, 64), interpolation=cv2.INTER_AREA), 100, 200)
    assert np.array_equal(out[:, :, 0], reference)


def test_invert_and_none_are_exact():
    img = drawing()
    assert np.array_equal(run("invert", img), 255 - np.asarray(img))
    assert np.array_equal(run("none", img), np.asarray(img))
    # A transparent drawing reads as drawn on white (sd-webui-controlnet's RGBA rule).
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    rgba.putpixel((1, 1), (0, 0, 0, 255))
    inverted = run("invert", rgba)
    assert inverted[1, 1].tolist() == [255, 255, 255] and inverted[0, 0].tolist() == [0, 0, 0]


def test_threshold_binarizes_on_the_darkest_channel():
    img = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8)[None, :, None] * 4, (64, 1, 3)))
    out = run("threshold", img, 64, 100)
    expected = np.where(np.asarray(img).min(axis=2) > 100, 255, 0)
    assert np.array_equal(out[:, :, 0], expected)
    assert np.array_equal(run("threshold", img, 64)[:, :, 0], np.where(np.asarray(img).min(axis=2) > 127, 255, 0))


def test_scribble_xdog_marks_dark_strokes_white_on_black():
    img = Image.new("RGB", (128, 128), "white")
    ImageDraw.Draw(img).line([10, 64, 118, 64], fill="black", width=4)
    out = run("scribble_xdog", img, 128)
    assert set(np.unique(out)) <= {0, 255}
    assert out[62:67, 20:108].mean() > 200  # the stroke
    assert out[:40].max() == 0 and out[90:].max() == 0  # far from it
    assert np.array_equal(out, run("scribble_xdog", img, 128))  # deterministic
    # A faint stroke: a low threshold keeps more of it than a high one.
    faint = Image.new("RGB", (128, 128), "white")
    ImageDraw.Draw(faint).line([10, 64, 118, 64], fill=(215, 215, 215), width=4)
    assert (run("scribble_xdog", faint, 128, 64) > 0).sum() < (run("scribble_xdog", faint, 128, 8) > 0).sum()


def test_lineart_standard_gives_white_lines_on_black():
    img = Image.new("RGB", (128, 128), "white")
    ImageDraw.Draw(img).line([10, 30, 118, 100], fill="black", width=2)
    out = run("lineart_standard", img, 128)
    # Normalised so the median line strength maps to 127 (a faint and a bold drawing look alike).
    line_mask = np.asarray(img)[:, :, 0] < 128
    assert 100 < out[line_mask].mean() < 160 and out[~line_mask].mean() < 20
    grey = Image.new("RGB", (128, 128), "white")
    ImageDraw.Draw(grey).line([10, 30, 118, 100], fill=(150, 150, 150), width=2)
    assert abs(run("lineart_standard", grey, 128)[line_mask].mean() - out[line_mask].mean()) < 15


def test_blur_gaussian_equals_cv2_blur():
    img = drawing(64, 64)
    assert np.array_equal(run("blur_gaussian", img, 64, 3.0), cv2.GaussianBlur(np.asarray(img), (0, 0), 3.0))
    assert np.array_equal(run("blur_gaussian", img, 64), cv2.GaussianBlur(np.asarray(img), (0, 0), 9.0))


def test_tile_resample_shrinks_by_the_rate():
    img = drawing(128, 64)
    assert np.array_equal(run("tile_resample", img), np.asarray(img))  # rate 1: unchanged
    half = run("tile_resample", img, None, 2.0)
    assert half.shape == (32, 64, 3)
    assert np.array_equal(half, cv2.resize(np.asarray(img), (64, 32), interpolation=cv2.INTER_AREA))


def test_shuffle_is_deterministic_and_rearranges_the_picture():
    img = drawing(128, 128)
    out = run("shuffle", img, 128)
    assert out.shape == (128, 128, 3)
    assert np.array_equal(out, run("shuffle", img, 128))
    assert not np.array_equal(out, np.asarray(img))
    # Only the picture's own colours (plus blends of them) come back: nothing is invented.
    assert abs(out.mean() - np.asarray(img).mean()) < 60


def test_color_grid_is_flat_64px_cells():
    left_red = np.zeros((128, 128, 3), np.uint8)
    left_red[:, :64] = (255, 0, 0)
    left_red[:, 64:] = (0, 0, 255)
    out = run("color", Image.fromarray(left_red), 128)
    assert out.shape == (128, 128, 3)
    for y in (0, 64):
        for x in (0, 64):
            cell = out[y:y + 64, x:x + 64].reshape(-1, 3)
            assert (cell == cell[0]).all()
    assert out[10, 10, 0] > out[10, 10, 2] and out[10, 100, 2] > out[10, 100, 0]


def test_recolor_is_grey_lightness_with_gamma():
    img = Image.fromarray(np.tile(np.arange(0, 256, 4, dtype=np.uint8)[None, :, None], (8, 1, 3)))
    out = run("recolor_intensity", img)
    assert np.array_equal(out, np.asarray(img))  # gamma 1 on grey: the value itself
    darker = run("recolor_intensity", img, None, 2.0)
    assert (darker[:, 1:-1, 0] < out[:, 1:-1, 0]).all()


@pytest.mark.parametrize("name", WEIGHT_FREE)
def test_every_weight_free_module_runs_offline_deterministically(name, tmp_path):
    img = drawing(96, 64)
    first = run(name, img, 64, folder=tmp_path)
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    assert np.array_equal(first, run(name, img, 64, folder=tmp_path))
    assert list(tmp_path.iterdir()) == []  # nothing downloaded or written


def test_names_and_aliases_match_sd_webui_controlnet():
    names, labels = pp.module_names(), pp.module_names(alias_names=True)
    assert names[0] == labels[0] == "none"
    for name in (*WEIGHT_FREE, "depth", "depth_zoe", "openpose_full", "hed", "mlsd", "normal_bae", "lineart",
                 "lineart_anime", "segmentation"):
        assert name in names
    for label in ("depth_midas", "t2ia_color_grid", "softedge_hed", "lineart_realistic", "seg_ufade20k",
                  "invert (from white bg & black line)", "lineart_standard (from white bg & black line)"):
        assert label in labels
    assert pp.resolve_alias("depth_midas") == "depth"
    assert pp.resolve_alias("T2IA_Color_Grid") == "color"
    assert pp.resolve_alias("invert (from white bg & black line)") == "invert"
    assert pp.resolve_alias(None) == "none"
    with pytest.raises(UserInputError, match="unknown ControlNet preprocessor 'cany'"):
        pp.run_preprocessor("cany", drawing(), 64, None, None, annotators_dir=Path("/x"))


def test_slider_details_per_module():
    canny = pp.module_detail_json("canny")
    assert canny["sliders"] == [
        {"name": "Resolution", "value": 512, "min": 64, "max": 2048, "step": 8},
        {"name": "Low Threshold", "value": 100, "min": 1, "max": 255, "step": 1},
        {"name": "High Threshold", "value": 200, "min": 1, "max": 255, "step": 1},
    ]
    assert pp.module_detail_json("none")["sliders"] == []
    assert [s["name"] for s in pp.module_detail_json("tile_resample")["sliders"]] == ["Down Sampling Rate"]
    mlsd = pp.module_detail("mlsd")
    assert (mlsd.threshold_a.label, mlsd.threshold_a.value, mlsd.threshold_b.maximum) == \
        ("MLSD Value Threshold", 0.1, 20.0)
    assert pp.module_detail("depth_midas").files == ("dpt_hybrid-midas-501f0c75.pt",)


def test_weight_needing_module_without_its_file_names_the_path(tmp_path):
    folder = tmp_path / "models" / "ControlNet" / "annotators"
    with pytest.raises(UserInputError) as err:
        pp.run_preprocessor("depth_midas", drawing(), 64, None, None, annotators_dir=folder)
    message = str(err.value)
    assert message.startswith(f"depth_midas needs {folder / 'dpt_hybrid-midas-501f0c75.pt'};")
    assert "https://huggingface.co/lllyasviel/Annotators/resolve/main/dpt_hybrid-midas-501f0c75.pt" in message
    with pytest.raises(UserInputError) as err:
        pp.run_preprocessor("openpose", drawing(), 64, None, None, annotators_dir=folder)
    for name in ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth"):
        assert str(folder / name) in str(err.value)
    assert not folder.exists()  # nothing created, nothing downloaded


def test_weight_needing_module_with_its_file_but_no_library_says_what_to_install(tmp_path):
    try:
        import controlnet_aux  # noqa: F401
        pytest.skip("controlnet-aux is installed here")
    except ImportError:
        pass
    (tmp_path / "ControlNetHED.pth").write_bytes(b"\0")
    with pytest.raises(UserInputError, match="softedge_hed runs on the controlnet-aux package.*pip install"):
        pp.run_preprocessor("hed", drawing(), 64, None, None, annotators_dir=tmp_path)


def test_bad_values_are_user_errors():
    with pytest.raises(UserInputError, match="too large"):
        pp.run_preprocessor("canny", drawing(), 100_000, None, None, annotators_dir=Path("/x"))
    with pytest.raises(UserInputError, match="no input image"):
        pp.run_preprocessor("canny", None, 64, None, None, annotators_dir=Path("/x"))


class _FakeMidas:
    """Stands in for controlnet_aux.MidasDetector (not installed here) with its documented call shape, to pin
    what we pass it: the local folder and file name, the detect resolution, the normal background threshold."""

    loads: list = []

    def __init__(self):
        self.calls = []

    @classmethod
    def from_pretrained(cls, folder, filename=None, **kwargs):
        cls.loads.append((folder, filename, kwargs))
        return cls()

    def __call__(self, img, depth_and_normal=False, bg_th=0.1, **kwargs):
        self.calls.append({"shape": img.shape, "depth_and_normal": depth_and_normal, "bg_th": bg_th, **kwargs})
        depth = np.full(img.shape[:2], 7, np.uint8)
        return (depth, np.full((*img.shape[:2], 3), 9, np.uint8)) if depth_and_normal else depth


def test_weight_needing_module_loads_its_local_file_once(tmp_path, monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "controlnet_aux", types.SimpleNamespace(MidasDetector=_FakeMidas))
    _FakeMidas.loads = []
    (tmp_path / "dpt_hybrid-midas-501f0c75.pt").write_bytes(b"\0")
    cache = pp.DetectorCache()
    depth = pp.run_preprocessor("depth_midas", drawing(), 256, None, None, annotators_dir=tmp_path, cache=cache)
    assert np.asarray(depth).shape == (50, 100, 3) and np.asarray(depth).max() == 7  # grey map -> RGB
    normal = pp.run_preprocessor("normal_midas", drawing(), 128, None, None, annotators_dir=tmp_path, cache=cache)
    assert np.asarray(normal).max() == 9  # the normal of MiDaS's (depth, normal) answer
    assert _FakeMidas.loads == [(str(tmp_path), "dpt_hybrid-midas-501f0c75.pt", {})]  # one load, cached
    detector = next(iter(cache._detectors.values()))
    assert [(c["detect_resolution"], c["depth_and_normal"], c["bg_th"]) for c in detector.calls] == \
        [(256, False, 0.1), (128, True, 0.4)]


def test_download_only_when_allowed_and_a_failed_one_names_the_file(tmp_path, no_network):
    folder = tmp_path / "annotators"
    # Not allowed (the default): no network use at all (no_network turns any connection into a failure).
    with pytest.raises(UserInputError, match="or allow annotator downloads"):
        pp.run_preprocessor("mlsd", drawing(), 64, None, None, annotators_dir=folder)
    # Allowed, but offline here: the message says the download failed and still names the path to place.
    with pytest.raises(UserInputError) as err:
        pp.run_preprocessor("mlsd", drawing(), 64, None, None, annotators_dir=folder, allow_download=True)
    message = str(err.value)
    assert message.startswith(f"mlsd needs {folder / 'mlsd_large_512_fp32.pth'}; downloading from "
                              "https://huggingface.co/lllyasviel/Annotators/resolve/main/ failed ("), message
    assert not (folder / "mlsd_large_512_fp32.pth").exists()
