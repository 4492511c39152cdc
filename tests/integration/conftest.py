"""A real AppContext over a tiny checkpoint with extensions in its data dir: the extension system, the
A1111 adapter and the core together, without a server."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from modules.context import build_context, load_initial_model
from modules.flags import parse_flags

ROOT = Path(__file__).resolve().parents[2]
WAIT = 120


def write_files(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return folder


def loaded_context(data_dir: Path, checkpoint, *extra_flags: str):
    """A real AppContext on `data_dir` with the tiny checkpoint loaded (built-in extensions included)."""
    flags = parse_flags(["--data-dir", str(data_dir), "--ckpt-dir", str(checkpoint.path.parent),
                         "--ckpt", str(checkpoint.path), "--no-download-sd-model", *extra_flags],
                        environ={}, project_root=ROOT)
    ctx = build_context(flags, ROOT)
    load_initial_model(ctx)
    assert ctx.model_error is None
    return ctx


@pytest.fixture
def make_ctx(tmp_path, tiny_sd15_checkpoint):
    """make_ctx({"ext-name": {"path": "text"}}, *flags) -> a loaded AppContext; closed after the test."""
    made = []

    def make(extensions: dict[str, dict[str, str]], *extra_flags: str):
        data = tmp_path / "data"
        for name, files in extensions.items():
            write_files(data / "extensions" / name, files)
        ctx = loaded_context(data, tiny_sd15_checkpoint, *extra_flags)
        made.append(ctx)
        # As the server does at start-up: every script's ui() built once, so missing args get defaults.
        from webui.a1111.script_ui import collect_defaults

        collect_defaults(ctx.extensions.compat)
        return ctx

    yield make
    for ctx in made:
        ctx.close()
