"""Folders on the server that a page names (img2img batch input, output and mask folders, Extras batch from
directory): resolved, and with --listen kept inside the data dir.

A folder typed into the page is read or written with the server's rights. On one's own machine that is the
user's own business; with --listen anyone who reaches the page could read or overwrite any folder the server
can, so, as A1111 restricts risky actions under --listen, such folders must then lie inside the data dir
unless --enable-insecure-extension-access is given.
"""
from __future__ import annotations

from pathlib import Path

from modules.types import UserInputError


def confined(flags) -> bool:
    """True when page-named folders must lie inside the data dir: --listen without
    --enable-insecure-extension-access."""
    insecure = getattr(flags, "enable_insecure_extension_access", False)
    return bool(getattr(flags, "listen", False)) and not insecure


def server_folder(ctx, text: str, field: str) -> Path:
    """`resolve_folder` with this server's flags and data dir."""
    return resolve_folder(text, ctx.paths.data_dir, confined=confined(ctx.flags), field=field)


def resolve_folder(text: str, data_dir: Path, *, confined: bool, field: str) -> Path:
    """The folder `text` names, absolute (a relative one is inside `data_dir`); raises UserInputError when
    `confined` and the folder (after following links) lies outside `data_dir`."""
    root = Path(data_dir).expanduser().resolve()
    path = Path(text.strip()).expanduser()
    path = (path if path.is_absolute() else root / path).resolve()
    if confined and not path.is_relative_to(root):
        raise UserInputError(
            f"{text.strip()} is outside the data folder {root}: with --listen, batch folders must be inside "
            "it (start the server with --enable-insecure-extension-access to allow any folder)", field=field)
    return path
