"""LoRA files on disk: the folders scanned (recursively, lazily), each file's header metadata and its
A1111 hash (sha256 of the bytes after the safetensors header), cached by (path, mtime, size).

Scanning lists names and stats only; headers are read when a card or a tag needs them, the hash when an
infotext or a card needs it, so setup and the first prompt without LoRAs cost nothing.
"""
from __future__ import annotations

import hashlib
import json
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUFFIXES = (".safetensors", ".pt", ".ckpt")
HEADER_LIMIT = 100 * 1024 * 1024  # a larger "header" is a corrupt file, not metadata to read


@dataclass(frozen=True)
class LoraFile:
    path: Path
    root: Path  # the scanned folder it was found under (for the relative folder on cards)
    mtime_ns: int
    size: int
    ctime: float

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def key(self) -> tuple[str, int, int]:
        return (str(self.path), self.mtime_ns, self.size)

    @property
    def folder(self) -> str:
        """The folder relative to its root ('' at the top), as A1111's search and tree use it."""
        rel = self.path.parent.relative_to(self.root)
        return "" if str(rel) == "." else rel.as_posix()


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """(the safetensors JSON header, the byte offset where tensor data starts); ValueError when broken."""
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise ValueError("file is shorter than a safetensors header")
        (length,) = struct.unpack("<Q", raw)
        if length <= 1 or length > HEADER_LIMIT:
            raise ValueError("not a safetensors file (bad header length)")
        header = json.loads(fh.read(length))
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file (header is not an object)")
    return header, 8 + length


def parse_metadata(raw: dict[str, Any]) -> dict[str, Any]:
    """`__metadata__` with the JSON-valued kohya keys (ss_tag_frequency, ss_dataset_dirs...) parsed."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str) and value[:1] in "{[" and key.startswith("ss_"):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[key] = value
    return out


@dataclass
class LoraLibrary:
    """The LoRA files of some folders: scanned on first use or refresh(), metadata and hashes on demand."""

    roots: tuple[Path, ...]
    _files: dict[str, LoraFile] | None = None  # stem (lowercase) -> file; first folder wins
    _aliases: dict[str, LoraFile] = field(default_factory=dict)
    _meta: dict[tuple[str, int, int], dict[str, Any]] = field(default_factory=dict)
    _hashes: dict[tuple[str, int, int], str] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    hash_reads: int = 0  # files read for hashing (tests check a cache hit reads nothing)

    def refresh(self) -> None:
        with self._lock:
            self._files = None
            self._aliases = {}
            self._scan()

    def files(self) -> list[LoraFile]:
        with self._lock:
            return list(self._scan().values())

    def _scan(self) -> dict[str, LoraFile]:
        if self._files is not None:
            return self._files
        found: dict[str, LoraFile] = {}
        for root in self.roots:
            if not root.is_dir():
                continue
            for path in sorted(root.rglob("*")):
                if path.suffix.lower() not in SUFFIXES or not path.is_file():
                    continue
                stat = path.stat()
                found.setdefault(path.stem.lower(), LoraFile(path, root, stat.st_mtime_ns, stat.st_size,
                                                             stat.st_ctime))
        self._files = found
        return found

    def find(self, name: str) -> LoraFile | None:
        """A tag's NAME: the file stem, else an `ss_output_name` alias (read from headers once, on a miss)."""
        with self._lock:
            files = self._scan()
            hit = files.get(name.lower())
            if hit is not None:
                return self._fresh(hit)
            if not self._aliases:
                for file in files.values():
                    alias = str(self.metadata(file).get("ss_output_name") or "")
                    if alias:
                        self._aliases.setdefault(alias.lower(), file)
            hit = self._aliases.get(name.lower())
            return self._fresh(hit) if hit is not None else None

    def _fresh(self, file: LoraFile) -> LoraFile | None:
        """The file with its current stat (an edited file must not reuse the old adapter); None if gone."""
        try:
            stat = file.path.stat()
        except OSError:
            return None
        if (stat.st_mtime_ns, stat.st_size) == (file.mtime_ns, file.size):
            return file
        fresh = LoraFile(file.path, file.root, stat.st_mtime_ns, stat.st_size, stat.st_ctime)
        if self._files is not None:
            self._files[file.stem.lower()] = fresh
        return fresh

    def metadata(self, file: LoraFile) -> dict[str, Any]:
        """The file's parsed `__metadata__` ({} for other formats or an unreadable header)."""
        with self._lock:
            if file.key not in self._meta:
                meta: dict[str, Any] = {}
                if file.path.suffix.lower() == ".safetensors":
                    try:
                        header, _ = read_header(file.path)
                        meta = parse_metadata(header.get("__metadata__") or {})
                    except (OSError, ValueError):
                        meta = {}
                self._meta[file.key] = meta
            return self._meta[file.key]

    def alias(self, file: LoraFile) -> str:
        return str(self.metadata(file).get("ss_output_name") or "") or file.stem

    def shorthash(self, file: LoraFile) -> str:
        """A1111's LoRA hash, 12 hex: sha256 of the file after its safetensors header ('' if unreadable)."""
        with self._lock:
            if file.key not in self._hashes:
                self._hashes[file.key] = self._hash(file.path)
            return self._hashes[file.key][:12]

    def cached_shorthash(self, file: LoraFile) -> str:
        """The hash if already computed, else '' (cards must not read every file in the library)."""
        with self._lock:
            return self._hashes.get(file.key, "")[:12]

    def _hash(self, path: Path) -> str:
        self.hash_reads += 1
        digest = hashlib.sha256()
        try:
            offset = read_header(path)[1] if path.suffix.lower() == ".safetensors" else 0
        except (OSError, ValueError):
            offset = 0
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            return ""
        return digest.hexdigest()

    def by_hash(self, shorthash: str) -> LoraFile | None:
        """The local file whose hash starts with `shorthash` (hashes every file not yet hashed: paste only)."""
        wanted = shorthash.lower()
        if not wanted:
            return None
        for file in self.files():
            if self.shorthash(file).startswith(wanted):
                return file
        return None
