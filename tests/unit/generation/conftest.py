"""Fixtures for the generation tests: tiny models wrapped as the pipeline manager's LoadedModel.

Images are 64x64 with 2-4 steps; the tiny VAE downsamples by 2, so latents are 32x32.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modules.devices import MemoryPolicy
from modules.pipelines.manager import LoadedModel, model_family
from modules.pipelines.registry import CheckpointInfo


def loaded(pipe, name: str, architecture: str) -> LoadedModel:
    """A pipeline as the manager hands it out, with a registry entry for its (never read) file."""
    info = CheckpointInfo(path=Path(f"/models/{name}.safetensors"), name=f"{name}.safetensors",
                          model_name=name, hash="0123456789abcdef")
    return LoadedModel(info, pipe, model_family(pipe), architecture, MemoryPolicy())


@pytest.fixture(scope="module")
def sd15(tiny_sd15_pipe) -> LoadedModel:
    return loaded(tiny_sd15_pipe, "tiny-sd15", "sd15")


@pytest.fixture(scope="module")
def sdxl(tiny_sdxl_pipe) -> LoadedModel:
    return loaded(tiny_sdxl_pipe, "tiny-sdxl", "sdxl-base")


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A 96x64 RGB test image: smooth gradients plus a few edges, so resizes and crops are visible."""
    y, x = np.mgrid[0:64, 0:96]
    rgb = np.stack([x * 255 / 95, y * 255 / 63, ((x // 16 + y // 16) % 2) * 200 + 20], axis=2)
    return Image.fromarray(rgb.astype(np.uint8))
