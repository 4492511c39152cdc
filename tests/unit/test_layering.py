"""Imports point one way: launch.py -> webui -> modules <- extensions (DESIGN.md). Walks the files with ast."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_MODULES = ("gradio", "fastapi", "starlette", "uvicorn", "webui", "extensions")
# Inside modules/, low layers never import high ones.
LOW_LAYERS = ("types", "files", "settings", "paths", "devices", "flags", "install", "prompts", "samplers", "images",
              "rng")
HIGH_LAYERS = ("modules.pipelines", "modules.generation", "modules.jobs", "modules.extensions", "modules.context")
# launch.py and these run before the venv exists: standard library only.
STDLIB_ONLY = ("modules/flags.py", "modules/install.py", "modules/preload.py", "modules/a1111/importer.py")


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


# Extensions: the built-ins in extensions/ and the documented example(s) a third party copies.
EXTENSION_ROOTS = ("extensions", "docs/examples")
PUBLIC_FOR_EXTENSIONS = ("modules.extensions.api", "modules.types")


def is_a1111_style(folder: Path) -> bool:
    """A folder without extension.toml, or one whose manifest says style = "a1111"."""
    from modules.extensions.manifest import read_manifest

    manifest = read_manifest(folder)
    return manifest is None or manifest.style == "a1111"


def extension_import_violations(root: Path) -> tuple[list[Path], list[str]]:
    """(native extension files checked, "file imports module" for each core import beyond the public API).

    In A1111-style extensions `modules` is A1111's package: the adapter resolves those names for that
    code only (modules/a1111/importer.py), so `from modules import shared` there never reaches our core;
    those folders are not held to the native rule."""
    files: list[Path] = []
    bad = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "__pycache__"):
        if is_a1111_style(folder):
            continue
        for path in sorted(folder.rglob("*.py")):
            files.append(path)
            for m in imported_modules(path):
                if m.split(".")[0] == "modules" and m not in PUBLIC_FOR_EXTENSIONS \
                        and not m.startswith("modules.extensions.api."):
                    bad.append(f"{path.relative_to(root)} imports {m}")
    return files, bad


def check_extension_roots(base: Path, names: tuple[str, ...]) -> list[Path]:
    """Assert every existing root holds code, and no native extension imports the core beyond the API."""
    checked: list[Path] = []
    for name in names:
        root = base / name
        if not root.exists():
            continue
        # an extensions folder without code would make the check pass while checking nothing
        assert any(root.rglob("*.py")), f"{name}/ holds no Python files to check"
        files, bad = extension_import_violations(root)
        assert not bad, f"extensions may import {', '.join(PUBLIC_FOR_EXTENSIONS)} only: {bad}"
        checked += files
    assert checked, f"none of {', '.join(names)} holds native extension code to check"
    return checked


def test_extensions_use_only_the_public_api():
    checked = check_extension_roots(ROOT, EXTENSION_ROOTS)
    assert ROOT / "docs/examples/hello-extension/__init__.py" in checked


def native(folder: Path) -> Path:
    """A native extension folder (with extension.toml) under tmp_path."""
    folder.mkdir(parents=True)
    (folder / "extension.toml").write_text(f'name = "{folder.name}"\nversion = "1.0.0"\n')
    return folder


def test_the_extension_check_catches_a_violation(tmp_path):
    # A tree laid out like a real extension: the check must walk into sub-folders and see `from` imports.
    good = native(tmp_path / "extensions" / "fine") / "__init__.py"
    bad = native(tmp_path / "extensions" / "naughty") / "helpers" / "main.py"
    bad.parent.mkdir()
    good.write_text("from modules.extensions.api import ExtensionApi\n"
                    "from modules.types import UserInputError\n")
    assert check_extension_roots(tmp_path, ("extensions",)) == [good]
    bad.write_text("import os\nfrom modules.pipelines.manager import PipelineManager\n"
                   "import modules.jobs.queue\n")
    with pytest.raises(AssertionError) as caught:
        check_extension_roots(tmp_path, ("extensions",))
    assert "naughty/helpers/main.py imports modules.pipelines.manager" in str(caught.value)
    assert "naughty/helpers/main.py imports modules.jobs.queue" in str(caught.value)


def test_an_empty_or_missing_extensions_folder_fails_the_check(tmp_path):
    with pytest.raises(AssertionError, match="none of extensions holds native extension code"):
        check_extension_roots(tmp_path, ("extensions",))
    (tmp_path / "extensions" / "empty-one").mkdir(parents=True)
    with pytest.raises(AssertionError, match="extensions/ holds no Python files"):
        check_extension_roots(tmp_path, ("extensions",))


def test_a1111_style_extensions_may_name_a1111_modules(tmp_path):
    # `modules` in A1111 extension code is the adapter; the same import in a native one is a violation.
    script = "from modules import processing, shared\n"
    classic = tmp_path / "extensions" / "classic" / "scripts" / "run.py"
    classic.parent.mkdir(parents=True)
    classic.write_text(script)
    marked = native(tmp_path / "extensions" / "marked") / "main.py"
    (marked.parent / "extension.toml").write_text('name = "marked"\nversion = "1.0.0"\nstyle = "a1111"\n')
    marked.write_text(script)
    plain = native(tmp_path / "extensions" / "plain") / "__init__.py"
    plain.write_text(script)
    files, bad = extension_import_violations(tmp_path / "extensions")
    assert files == [plain] and bad == ["plain/__init__.py imports modules"]


def test_a_violation_would_be_caught(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("import gradio as gr\nfrom webui.ui import app\n")
    assert [m for m in imported_modules(sample) if m.split(".")[0] in FORBIDDEN_IN_MODULES] == ["gradio", "webui.ui"]
