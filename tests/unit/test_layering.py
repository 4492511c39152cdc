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


# Native extensions: the built-ins in extensions/ and the documented example(s) a third party copies.
EXTENSION_ROOTS = ("extensions", "docs/examples")
PUBLIC_FOR_EXTENSIONS = ("modules.extensions.api", "modules.types")


def extension_import_violations(root: Path) -> tuple[list[Path], list[str]]:
    """(python files checked, "file imports module" for each import of the core beyond the public API)."""
    files = sorted(root.rglob("*.py"))
    bad = []
    for path in files:
        for m in imported_modules(path):
            if m.split(".")[0] == "modules" and m not in PUBLIC_FOR_EXTENSIONS \
                    and not m.startswith("modules.extensions.api."):
                bad.append(f"{path.relative_to(root)} imports {m}")
    return files, bad


def check_extension_roots(base: Path, names: tuple[str, ...]) -> list[Path]:
    """Assert every existing root holds Python files and none imports the core beyond the public API."""
    checked: list[Path] = []
    for name in names:
        root = base / name
        if not root.exists():
            continue
        files, bad = extension_import_violations(root)
        # an extensions folder without code would make the check pass while checking nothing
        assert files, f"{name}/ holds no Python files to check"
        assert not bad, f"extensions may import {', '.join(PUBLIC_FOR_EXTENSIONS)} only: {bad}"
        checked += files
    assert checked, f"none of {', '.join(names)} holds extension code to check"
    return checked


def test_extensions_use_only_the_public_api():
    checked = check_extension_roots(ROOT, EXTENSION_ROOTS)
    assert ROOT / "docs/examples/hello-extension/__init__.py" in checked


def test_the_extension_check_catches_a_violation(tmp_path):
    # A tree laid out like a real extension: the check must walk into sub-folders and see `from` imports.
    good = tmp_path / "extensions" / "fine" / "__init__.py"
    bad = tmp_path / "extensions" / "naughty" / "scripts" / "main.py"
    for path in (good, bad):
        path.parent.mkdir(parents=True)
    good.write_text("from modules.extensions.api import ExtensionApi\n"
                    "from modules.types import UserInputError\n")
    assert check_extension_roots(tmp_path, ("extensions",)) == [good]
    bad.write_text("import os\nfrom modules.pipelines.manager import PipelineManager\n"
                   "import modules.jobs.queue\n")
    with pytest.raises(AssertionError) as caught:
        check_extension_roots(tmp_path, ("extensions",))
    assert "naughty/scripts/main.py imports modules.pipelines.manager" in str(caught.value)
    assert "naughty/scripts/main.py imports modules.jobs.queue" in str(caught.value)


def test_an_empty_or_missing_extensions_folder_fails_the_check(tmp_path):
    with pytest.raises(AssertionError, match="none of extensions holds extension code"):
        check_extension_roots(tmp_path, ("extensions",))
    (tmp_path / "extensions" / "empty-one").mkdir(parents=True)
    with pytest.raises(AssertionError, match="extensions/ holds no Python files"):
        check_extension_roots(tmp_path, ("extensions",))


def test_a_violation_would_be_caught(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("import gradio as gr\nfrom webui.ui import app\n")
    assert [m for m in imported_modules(sample) if m.split(".")[0] in FORBIDDEN_IN_MODULES] == ["gradio", "webui.ui"]
