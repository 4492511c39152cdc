"""A1111's `preload.py`: extensions add command-line flags before the flags are parsed.

A1111 runs each extension's `preload.py` with the argument parser (`preload(parser)`) so that
`python launch.py --controlnet-dir X` is accepted. Standard library only: this runs in launch.py before
the venv exists. The extension folders are found from `--data-dir` (read with a tolerant pre-parse);
an extension disabled in config.json or by --disable-*-extensions adds nothing, and a preload.py that
fails is reported in one line and skipped.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence


def _prescan(argv: Sequence[str]) -> argparse.Namespace:
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--data-dir", default=None)
    pre.add_argument("--disable-all-extensions", action="store_true")
    pre.add_argument("--disable-extra-extensions", action="store_true")
    known, _ = pre.parse_known_args(list(argv))
    return known


def _disabled(data_dir: Path) -> set[str]:
    try:
        data = json.loads((data_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    names = data.get("disabled_extensions") if isinstance(data, dict) else None
    return {str(n) for n in names} if isinstance(names, list) else set()


def preload_files(project_root: Path, argv: Sequence[str]) -> list[Path]:
    """preload.py of every enabled extension, built-in folder first, then by name (the loader's order)."""
    known = _prescan(argv)
    if known.disable_all_extensions:
        return []
    data_dir = Path(known.data_dir).expanduser().resolve() if known.data_dir else Path(project_root)
    disabled = _disabled(data_dir)
    builtin = Path(project_root) / "extensions"
    roots = [(builtin, True)]
    user = data_dir / "extensions"
    if user.resolve() != builtin.resolve():
        roots.append((user, False))
    found: list[Path] = []
    for root, is_builtin in roots:
        if not root.is_dir() or (known.disable_extra_extensions and not is_builtin):
            continue
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            if folder.name not in disabled and (folder / "preload.py").is_file():
                found.append(folder / "preload.py")
    return found


def _preload_imports(project_root: Path, argv: Sequence[str]):
    """A1111's path modules for preload.py files (`from modules import paths` is common in them)."""
    import types

    from modules.a1111.importer import A1111Imports

    known = _prescan(argv)
    data_dir = Path(known.data_dir).expanduser().resolve() if known.data_dir else Path(project_root)

    def paths_module(name: str):
        mod = types.ModuleType(name)
        mod.script_path = str(project_root)
        mod.data_path = str(data_dir)
        mod.models_path = str(data_dir / "models")
        mod.extensions_dir = str(data_dir / "extensions")
        mod.extensions_builtin_dir = str(Path(project_root) / "extensions")
        return mod

    imports = A1111Imports("preload.py runs before the app exists; only modules.paths is available there")
    imports.provide("modules.paths", lambda: paths_module("modules.paths"))
    imports.provide("modules.paths_internal", lambda: paths_module("modules.paths_internal"))
    return imports


def add_extension_flags(parser: argparse.ArgumentParser, project_root: Path, argv: Sequence[str]) -> list[str]:
    """Run each preload(parser); returns the names (dests) of the flags extensions added."""
    before = {action.dest for action in parser._actions}
    files = preload_files(project_root, argv)
    imports = _preload_imports(project_root, argv) if files else None
    for path in files:
        namespace = {"__file__": str(path), "__name__": f"preload_{path.parent.name}",
                     "__builtins__": imports.builtins}
        try:
            code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
            exec(code, namespace)  # noqa: S102 - the user installed this extension to run its code
            preload = namespace.get("preload")
            if callable(preload):
                preload(parser)
        except Exception as exc:  # argparse conflicts, import errors, ...: one line, then go on
            print(f"warning: {path.parent.name}/preload.py failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    return sorted({action.dest for action in parser._actions} - before)
