"""Caption files beside images: which files are images, where each one's caption lives, and writing a
caption so that a failed write leaves the old file as it was (temporary file + fsync + rename)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".avif")
CAPTION_EXTENSIONS = (".txt", ".caption")


def caption_extension(value: str) -> str:
    """'.txt' or '.caption' ('txt' accepted); anything else is refused."""
    ext = "." + (value or ".txt").strip().lstrip(".").lower()
    if ext not in CAPTION_EXTENSIONS:
        raise ValueError(f"caption extension must be .txt or .caption, not {value!r}")
    return ext


def list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, by name (hidden files and backups left out)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    return sorted((p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
                  key=lambda p: p.name.lower())


def caption_path(image: Path, extension: str = ".txt") -> Path:
    """`photo.png` -> `photo.txt` (A1111 and kohya put the caption beside the image, same stem)."""
    return Path(image).with_suffix(caption_extension(extension))


def read_caption(path: Path) -> str | None:
    """The caption's text, None when there is no file."""
    try:
        return Path(path).read_text(encoding="utf-8-sig", errors="replace")
    except FileNotFoundError:
        return None


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one step: the file is either the old one or the new one, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_caption(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"))


def write_all_atomic(files: dict[Path, bytes]) -> None:
    """Replace many files all or nothing as far as a write error goes: every new file is written beside
    its target first; only when all are written (and flushed to disk, one sync for the whole batch: one
    fsync per file costs ~6 ms here, 30 s for 5000 captions) are they renamed over the old ones."""
    written: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            path = Path(path)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            written.append((tmp, path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        if len(written) > 1:
            os.sync()
        elif written:
            with open(written[0][0], "rb+") as handle:
                os.fsync(handle.fileno())
    except BaseException:
        for tmp, _ in written:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        raise
    for tmp, path in written:
        os.replace(tmp, path)
