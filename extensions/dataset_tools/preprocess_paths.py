"""The folders of a Preprocess run: resolved, checked, and never the source.

Paths are the server's. With --listen anyone who reaches the server could make it read or overwrite any
folder it can, so (as A1111 restricts risky actions under --listen) both folders must then lie inside
the data dir unless --enable-insecure-extension-access is given.
"""
from __future__ import annotations

from pathlib import Path

from modules.types import UserInputError


class FolderNotAllowed(UserInputError):
    """A folder outside the data dir while the server listens on the network (HTTP 403)."""


def confined(listen: bool, insecure: bool) -> bool:
    """True when folders must lie inside the data dir: --listen without --enable-insecure-extension-access."""
    return bool(listen) and not insecure


def resolve_folder(text: str, data_dir: Path, *, confined: bool, field: str) -> Path:
    """The absolute folder `text` names (a relative one is inside `data_dir`), links followed; raises
    FolderNotAllowed when `confined` and it lies outside `data_dir`."""
    if not str(text or "").strip():
        raise UserInputError(f"{field}: no folder given", field=field)
    root = Path(data_dir).expanduser().resolve()
    path = Path(str(text).strip()).expanduser()
    path = (path if path.is_absolute() else root / path).resolve()
    if confined and not path.is_relative_to(root):
        raise FolderNotAllowed(
            f"{field}: {str(text).strip()} is outside the data folder {root}; with --listen, dataset folders "
            "must be inside it (start the server with --enable-insecure-extension-access to allow any folder)",
            field=field)
    return path


def kohya_folder(destination: Path, repeats: int, name: str) -> Path:
    """`destination/<repeats>_<name>` (kohya's layout: the repeat count is the folder's prefix), or
    `destination` itself when no repeats are asked for."""
    if repeats <= 0:
        return destination
    clean = name.strip()
    if not clean or any(c in clean for c in "/\\") or clean in (".", ".."):
        raise UserInputError(f"kohya name {name!r}: give a plain folder name (no slashes)", field="name")
    return destination / f"{int(repeats)}_{clean}"


def check_folders(source: Path, output: Path) -> None:
    """Raise UserInputError unless `source` is a folder and `output` neither is it nor lies inside it
    (a run must never write into the images it reads)."""
    if not source.is_dir():
        raise UserInputError(f"source folder {source} does not exist", field="source_dir")
    if output == source or output.is_relative_to(source):
        raise UserInputError(f"the destination {output} is the source folder or inside it; choose another "
                             "folder (preprocess never writes into its source)", field="destination_dir")
    if output.exists() and not output.is_dir():
        raise UserInputError(f"the destination {output} is a file, not a folder", field="destination_dir")
