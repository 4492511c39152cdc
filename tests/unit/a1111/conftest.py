"""A small real app context for the A1111 adapter: real Settings, Paths and JobQueue, no model."""
from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from modules.devices import DeviceInfo, MemoryPolicy
from modules.flags import parse_flags
from modules.jobs.queue import JobQueue
from modules.paths import Paths
from modules.settings import Settings


class NoCheckpoints:
    def list(self):
        return []

    def find(self, query, **kw):
        return None

    def refresh(self):
        pass

    def title_of(self, info):
        return info.name


@pytest.fixture
def app_ctx(tmp_path):
    paths = Paths.from_dirs(tmp_path / "data")
    paths.ensure_writable()
    jobs = JobQueue()
    ctx = SimpleNamespace(
        flags=parse_flags(["--data-dir", str(tmp_path / "data")], environ={}), paths=paths,
        settings=Settings(paths.config_file), jobs=jobs, device=DeviceInfo(),
        policy_for=lambda family: MemoryPolicy(), checkpoints=NoCheckpoints(),
        pipelines=SimpleNamespace(current=None), styles=None, embeddings=None)
    yield ctx
    jobs.shutdown()


def write_a1111_extension(root: Path, name: str, scripts: dict[str, str], extra: dict[str, str] | None = None) -> Path:
    folder = root / name
    (folder / "scripts").mkdir(parents=True)
    for file_name, text in scripts.items():
        (folder / "scripts" / file_name).write_text(textwrap.dedent(text))
    for rel, text in (extra or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(textwrap.dedent(text))
    return folder
