"""The built-in ControlNet extension imported as the loader imports it (webui_extensions.controlnet)."""
from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest

from modules.extensions.loader import import_extension_package, package_name
from modules.paths import BUILTIN_EXTENSIONS_DIR

CORE_MODULES = ("units", "models", "apply", "control_image", "infotext", "runner", "routes")


@pytest.fixture(scope="session")
def cn():
    """The extension's core modules by name: cn.units, cn.models, cn.apply, ..."""
    import_extension_package("controlnet", BUILTIN_EXTENSIONS_DIR / "controlnet")
    prefix = package_name("controlnet")
    return SimpleNamespace(**{name: importlib.import_module(f"{prefix}.{name}") for name in CORE_MODULES})
