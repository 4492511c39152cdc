"""Model file hashes: full sha256 (cached in cache.json by name and mtime) and A1111's legacy 8-hex hash.

The cache file uses A1111's layout (`{"hashes": {"checkpoint/<name>": {"mtime": ..., "sha256": ...}}}`)
so a data dir shared with A1111 reuses its hashes; sections we do not know are kept as they are.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from modules.files import write_text_atomic

log = logging.getLogger(__name__)

CHUNK = 1 << 20
# A1111's "old hash": 64 KiB read at offset 1 MiB, hashed, first 8 hex digits.
LEGACY_OFFSET = 0x100000
LEGACY_LENGTH = 0x10000


def sha256_file(path: Path | str) -> str:
    """Full sha256 of a file as 64 lowercase hex digits (reads the whole file in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def legacy_hash(path: Path | str) -> str:
    """A1111's pre-sha256 model hash: 8 hex digits of sha256 over 64 KiB at offset 1 MiB."""
    with open(path, "rb") as fh:
        fh.seek(LEGACY_OFFSET)
        return hashlib.sha256(fh.read(LEGACY_LENGTH)).hexdigest()[:8]


def file_mtime(path: Path | str) -> float:
    return os.path.getmtime(path)


class HashCache:
    """sha256 values keyed like A1111 ("checkpoint/sub/model.safetensors"), valid while the mtime matches."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.load_warning: str | None = None
        self._lock = threading.Lock()
        self._data = self._read()

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            return self._corrupt(f"cannot read {self.path}: {exc}")
        try:
            data = json.loads(text)
        except ValueError as exc:
            return self._corrupt(f"{self.path} is not valid JSON ({exc})")
        if not isinstance(data, dict):
            return self._corrupt(f"{self.path} does not hold a JSON object")
        return data

    def _corrupt(self, why: str) -> dict[str, Any]:
        # A broken cache only costs re-hashing: say so and carry on with an empty one.
        self.load_warning = f"hash cache ignored: {why}"
        log.warning(self.load_warning)
        return {}

    def get(self, key: str, mtime: float, section: str = "hashes") -> str | None:
        """The cached sha256 for `key` if it was stored for this exact mtime, else None."""
        with self._lock:
            entry = self._data.get(section, {}).get(key)
        if not isinstance(entry, dict) or entry.get("mtime") != mtime:
            return None
        value = entry.get("sha256")
        return value if isinstance(value, str) and len(value) == 64 else None

    def put(self, key: str, mtime: float, sha256: str, section: str = "hashes") -> None:
        """Store one hash and write the file atomically, merging what others wrote meanwhile."""
        entry = {"mtime": mtime, "sha256": sha256}
        with self._lock:
            on_disk = self._read_quietly()
            for name, values in self._data.items():
                if isinstance(values, dict) and isinstance(on_disk.get(name, {}), dict):
                    on_disk[name] = {**values, **on_disk.get(name, {})}
            on_disk.setdefault(section, {})
            if not isinstance(on_disk[section], dict):
                on_disk[section] = {}
            on_disk[section][key] = entry
            self._data = on_disk
            self._write(on_disk)

    def _read_quietly(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        # readers never see a half-written cache
        write_text_atomic(self.path, json.dumps(data, indent=4))


def cached_sha256(path: Path | str, key: str, cache: HashCache | None) -> str:
    """sha256 of `path`, from `cache` when its mtime still matches, else computed and stored."""
    mtime = file_mtime(path)
    if cache is not None and (known := cache.get(key, mtime)) is not None:
        return known
    value = sha256_file(path)
    if cache is not None:
        try:
            cache.put(key, mtime, value)
        except OSError as exc:  # a read-only data dir must not stop loading a model
            log.warning("could not write hash cache %s: %s", cache.path, exc)
    return value
