"""Which server folders a request may name. Paths are the server's; with --listen (others on the network)
they must lie inside the data dir unless --enable-insecure-extension-access, as for installing extensions.
The rule itself is preprocess_paths.resolve_folder's (one rule for every dataset route); this adds that
the folder must exist, with the exceptions the caption and tag routes map to 403 / 404 / 422."""
from __future__ import annotations

from pathlib import Path

from .preprocess_paths import FolderNotAllowed, confined
from .preprocess_paths import resolve_folder as resolve_any_folder


class FolderRefused(PermissionError):
    """The folder is outside the data dir while the server listens on the network (HTTP 403)."""


def resolve_folder(raw: str, *, data_dir: Path, listen: bool, insecure: bool) -> Path:
    """An existing folder from a request: relative paths are inside the data dir."""
    text = (raw or "").strip()
    if not text:
        raise ValueError("no folder given")
    try:
        path = resolve_any_folder(text, data_dir, confined=confined(listen, insecure), field="folder")
    except FolderNotAllowed as exc:
        raise FolderRefused(str(exc)) from None
    if not path.is_dir():
        raise FileNotFoundError(f"{text}: no such folder")
    return path
