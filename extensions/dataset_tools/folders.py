"""Which server folders a request may name. Paths are the server's; with --listen (others on the network)
they must lie inside the data dir unless --enable-insecure-extension-access, as for installing extensions."""
from __future__ import annotations

from pathlib import Path


class FolderRefused(PermissionError):
    """The folder is outside the data dir while the server listens on the network (HTTP 403)."""


def resolve_folder(raw: str, *, data_dir: Path, listen: bool, insecure: bool) -> Path:
    """An existing folder from a request: relative paths are inside the data dir."""
    text = (raw or "").strip()
    if not text:
        raise ValueError("no folder given")
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = Path(data_dir) / path
    path = path.resolve()
    if listen and not insecure and not path.is_relative_to(Path(data_dir).resolve()):
        raise FolderRefused(f"{text}: outside the data dir ({data_dir}); with --listen only folders inside "
                            "it are allowed (--enable-insecure-extension-access lifts this)")
    if not path.is_dir():
        raise FileNotFoundError(f"{text}: no such folder")
    return path
