"""User upscaler models through spandrel (modules/postprocessing/spandrel_models.py, tiling.py): a tiny
ESRGAN (RRDBNet, 8 features, 1 block) built here and saved as .pth and .safetensors in models/ESRGAN;
rows in the registry, Extras, tiled = untiled within a tolerance, corrupt and unknown files unavailable."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from modules.paths import Paths
from modules.postprocessing import ExtrasRequest, UpscalerRegistry, postprocess_image
from modules.postprocessing.upscalers import registry_for
from modules.types import UserInputError
from tests.helpers.needs import missing

try:
    from modules.postprocessing import spandrel_models, tiling
    spandrel = spandrel_models.import_spandrel()
except ImportError as exc:  # pragma: no cover - spandrel is in requirements.txt
    spandrel = None
    SPANDREL_MISSING = str(exc)


@pytest.fixture(scope="module")
def tiny_esrgan_state():
    if spandrel is None:
        missing(f"spandrel is not installed: {SPANDREL_MISSING}")
    from tests.fixtures.upscaler_models import tiny_esrgan_state

    return tiny_esrgan_state()


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, tiny_esrgan_state) -> Path:
    """models/ESRGAN with the tiny model as .pth and .safetensors, a corrupt file and a foreign one;
    models/SwinIR with a copy (A1111's other folders are looked in too)."""
    models = tmp_path_factory.mktemp("data") / "models"
    esrgan = models / "ESRGAN"
    esrgan.mkdir(parents=True)
    torch.save(tiny_esrgan_state, esrgan / "2x-tiny.pth")
    save_file(tiny_esrgan_state, str(esrgan / "2x-tiny-st.safetensors"))
    (esrgan / "broken.pth").write_bytes(b"PK\x03\x04 this is not a torch file")
    save_file({"encoder.layer.weight": torch.zeros(4, 4)}, str(esrgan / "not-an-upscaler.safetensors"))
    (models / "SwinIR").mkdir()
    torch.save(tiny_esrgan_state, models / "SwinIR" / "2x-other.pth")
    return models


@pytest.fixture(scope="module")
def registry(models_dir) -> UpscalerRegistry:
    registry = UpscalerRegistry()
    added = spandrel_models.register(registry, spandrel_models.folders_for(SimpleNamespace(models_dir=models_dir)),
                                     tiling=lambda: (0, 0))
    assert added == 3
    return registry


@pytest.fixture
def picture() -> Image.Image:
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:40, 0:48]
    rgb = np.stack([x * 5, y * 6, (x * y) % 256], axis=2) + rng.integers(0, 30, (40, 48, 3))
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def test_model_files_are_rows_with_their_scale(registry, models_dir):
    rows = {s.name: s for s in registry.specs()}
    for name in ("2x-tiny", "2x-tiny-st", "2x-other"):
        assert rows[name].native_scale == 2 and rows[name].model_name == "ESRGAN"
    assert rows["2x-other"].model_path == str((models_dir / "SwinIR" / "2x-other.pth").resolve())
    assert rows["2x-tiny"].api_row()["scale"] == 2


def test_corrupt_and_unknown_files_are_unavailable_with_the_reason(registry):
    assert "cannot read the file" in registry.unavailable["broken"]
    assert "does not know this model's architecture" in registry.unavailable["not-an-upscaler"]
    with pytest.raises(UserInputError, match="not available here: broken.pth: cannot read"):
        registry.get("broken")


def test_extras_upscales_with_the_model(registry, picture):
    out, info = postprocess_image(picture, ExtrasRequest(upscaler_1="2x-tiny", upscaling_resize=2), registry)
    assert out.size == (96, 80) and "Postprocess upscaler: 2x-tiny" in info
    # Not a resampler in disguise: the network's output differs from Lanczos.
    lanczos = picture.resize((96, 80), Image.Resampling.LANCZOS)
    assert np.abs(np.asarray(out, float) - np.asarray(lanczos, float)).mean() > 5
    # .pth and .safetensors hold the same weights: the same pixels.
    same, _ = postprocess_image(picture, ExtrasRequest(upscaler_1="2x-tiny-st", upscaling_resize=2), registry)
    assert np.array_equal(np.asarray(out), np.asarray(same))
    # 4x from a 2x model: run twice (the registry's passes), then exact size.
    out4, _ = postprocess_image(picture, ExtrasRequest(upscaler_1="2x-tiny", upscaling_resize=4), registry)
    assert out4.size == (192, 160)
    rgba = picture.convert("RGBA")
    assert postprocess_image(rgba, ExtrasRequest(upscaler_1="2x-tiny", upscaling_resize=2), registry)[0].mode == "RGBA"


def test_tiled_matches_untiled_within_tolerance(registry, tiny_esrgan_state):
    descriptor = spandrel.ModelLoader().load_from_state_dict(tiny_esrgan_state)
    image = torch.rand(1, 3, 40, 52, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        whole = tiling.upscale_tiled(descriptor, image, 2, tile=0, overlap=0)
        tiled = tiling.upscale_tiled(descriptor, image, 2, tile=16, overlap=8)
        seams = tiling.upscale_tiled(descriptor, image, 2, tile=16, overlap=0)
    assert tiled.shape == whole.shape == (1, 3, 80, 104)
    error = (tiled - whole).abs()
    assert error.max() < 0.02 and error.mean() < 0.002  # 5/255 at worst, a fraction of a level on average
    assert (seams - whole).abs().max() > error.max()  # the blended overlap is what hides the seams


def test_tiles_bound_the_size_the_network_sees():
    seen = []

    def run(piece):
        seen.append(tuple(piece.shape[2:]))
        return piece.repeat_interleave(2, 2).repeat_interleave(2, 3)

    image = torch.rand(1, 3, 100, 130)
    out = tiling.upscale_tiled(run, image, 2, tile=32, overlap=8)
    assert max(h for h, _ in seen) <= 32 and max(w for _, w in seen) <= 32
    assert torch.allclose(out, run(image), atol=1e-6)  # an exact 2x network: tiling changes nothing
    assert tiling.tile_starts(100, 32, 8) == [0, 24, 48, 68]


def test_the_tile_setting_is_read_per_image(models_dir, picture):
    from modules.settings import Settings

    settings = Settings(models_dir.parent / "config.json")
    ctx = SimpleNamespace(paths=Paths.from_dirs(data_dir=models_dir.parent), settings=settings)
    registry = registry_for(ctx)
    assert "2x-tiny" in registry.names() and "broken" in registry.unavailable
    settings.update({spandrel_models.TILE_SETTING: 16, spandrel_models.OVERLAP_SETTING: 8}, save=False)
    spec = registry.get("2x-tiny")
    tiled = spec.run(picture, 2)
    settings.update({spandrel_models.TILE_SETTING: 0}, save=False)
    whole = spec.run(picture, 2)
    diff = np.abs(np.asarray(tiled, float) - np.asarray(whole, float))
    assert tiled.size == whole.size == (96, 80) and 0 < diff.max() <= 6


def test_without_spandrel_the_files_are_unavailable_with_the_install_hint(tmp_path, monkeypatch):
    (tmp_path / "ESRGAN").mkdir()
    (tmp_path / "ESRGAN" / "4x-model.pth").write_bytes(b"x")

    import sys

    monkeypatch.setitem(sys.modules, "spandrel", None)  # as if not installed: `import spandrel` fails
    registry = UpscalerRegistry()
    assert spandrel_models.register(registry, [tmp_path / "ESRGAN"]) == 0
    assert "pip install spandrel" in registry.unavailable["4x-model"]
