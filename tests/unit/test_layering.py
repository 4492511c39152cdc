"""Imports point one way: launch.py -> webui -> modules <- extensions (DESIGN.md). Walks the files with ast."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_MODULES = ("gradio", "fastapi", "starlette", "uvicorn", "webui", "extensions")
# Inside modules/, low layers never import high ones.
LOW_LAYERS = ("types", "files", "settings", "paths", "devices", "flags", "install", "prompts", "samplers", "images")
HIGH_LAYERS = ("modules.pipelines", "modules.generation", "modules.jobs", "modules.extensions", "modules.context")
# launch.py and these run before the venv exists: standard library only.
STDLIB_ONLY = ("modules/flags.py", "modules/install.py")


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_there_are_files_to_check():
    assert len(python_files("modules")) > 5


@pytest.mark.parametrize("path", python_files("modules"), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_never_import_ui_server_or_extensions(path):
    bad = [m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN_IN_MODULES]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", python_files("modules"), ids=lambda p: str(p.relative_to(ROOT)))
def test_low_layers_never_import_high_layers(path):
    rel = path.relative_to(ROOT / "modules").parts
    if rel[0].removesuffix(".py") not in LOW_LAYERS:
        return
    bad = [m for m in imported_modules(path) if m.startswith(HIGH_LAYERS)]
    assert not bad, f"{path.relative_to(ROOT)} (low layer) imports {bad}"


@pytest.mark.parametrize("rel", STDLIB_ONLY + ("launch.py",))
def test_prelaunch_code_is_stdlib_only(rel):
    import sys

    allowed = set(sys.stdlib_module_names) | {"modules", "__future__"}
    bad = [m for m in imported_modules(ROOT / rel) if m.split(".")[0] not in allowed]
    # launch.py may import webui lazily inside main(), after the environment is prepared
    bad = [m for m in bad if not (rel == "launch.py" and m.startswith("webui"))]
    assert not bad, f"{rel} imports non-stdlib {bad}"


def test_extensions_use_only_the_public_api():
    for path in python_files("extensions"):
        for m in imported_modules(path):
            if m.startswith("modules") and not m.startswith("modules.extensions.api") and m != "modules.types":
                pytest.fail(f"{path.relative_to(ROOT)} imports {m}; extensions may use modules.extensions.api only")


def test_a_violation_would_be_caught(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("import gradio as gr\nfrom webui.ui import app\n")
    assert [m for m in imported_modules(sample) if m.split(".")[0] in FORBIDDEN_IN_MODULES] == ["gradio", "webui.ui"]
