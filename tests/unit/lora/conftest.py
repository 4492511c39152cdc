"""The built-in LoRA extension imported as the loader imports it (package webui_extensions.lora)."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def lora_pkg():
    import importlib

    from modules.extensions.loader import import_extension_package

    package = import_extension_package("lora", ROOT / "extensions" / "lora")
    return {name: importlib.import_module(f"{package.__name__}.{name}")
            for name in ("convert", "engine", "files", "network")}
