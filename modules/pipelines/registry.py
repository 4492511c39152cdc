"""The checkpoint list: scan the checkpoint folders, name entries like A1111, hash lazily, find by any key.

Entries are single files (.safetensors, .ckpt) and diffusers folders (a folder with model_index.json,
not descended into). Folders named `*.config` hold config overrides next to a checkpoint and are skipped.
A folder has no hash (hashing every weight file of a folder is not worth its cost), so its title never
carries a bracket.
"""
from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from modules.paths import Paths
from modules.pipelines import hashes

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")
VAE_SUFFIXES = (".safetensors", ".pt", ".ckpt")
VAE_CHOICES = ("Automatic", "None")
FOLDER_MARKER = "model_index.json"
_HEX = re.compile(r"[0-9a-f]+")
_TITLE_HASH = re.compile(r"^(.*?)\s*\[([0-9a-fA-F]{8,64})\]$")


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint. `name` is the path relative to its folder with forward slashes."""

    path: Path
    name: str
    model_name: str
    hash: str | None = None
    is_folder: bool = False

    @property
    def shorthash(self) -> str | None:
        """First 10 hex digits of the sha256, as A1111 shows in titles and infotext."""
        return self.hash[:10] if self.hash else None

    @property
    def title(self) -> str:
        """A1111's title: `name [hash10]` once the hash is known, the bare name before."""
        return f"{self.name} [{self.shorthash}]" if self.hash else self.name

    @property
    def api_model_name(self) -> str:
        """A1111's /sd-models `model_name`: the name without extension, folders joined by '_'."""
        stem = self.name if self.is_folder else os.path.splitext(self.name)[0]
        return stem.replace("/", "_")

    @property
    def cache_key(self) -> str:
        return f"checkpoint/{self.name}"


def natural_key(text: str) -> list:
    """Sort key that orders 'model2' before 'model10', case-insensitively."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _walk(root: Path) -> Iterator[tuple[Path, bool]]:
    """(path, is_folder) for checkpoint files and diffusers folders under `root`, following links once."""
    seen: set[str] = set()
    for current, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(current)
        if real in seen:  # a symlink loop would walk forever
            dirs[:] = []
            continue
        seen.add(real)
        here = Path(current)
        if here != root and FOLDER_MARKER in files:
            dirs[:] = []
            yield here, True
            continue
        # `.config` folders are config overrides for a checkpoint; hidden folders are not models.
        dirs[:] = sorted(d for d in dirs if not d.endswith(".config") and not d.startswith("."))
        for name in sorted(files):
            if name.lower().endswith(CHECKPOINT_SUFFIXES):
                yield here / name, False


def _relative_name(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _model_name(path: Path, is_folder: bool) -> str:
    return path.name if is_folder else path.stem


class CheckpointRegistry:
    """Checkpoints found under `paths.ckpt_dirs` plus `paths.ckpt_files`; `refresh()` rescans."""

    def __init__(self, paths: Paths, cache: hashes.HashCache | None = None):
        self.paths = paths
        self.cache = cache if cache is not None else hashes.HashCache(paths.hash_cache_file)
        self._lock = threading.RLock()
        self._items: dict[str, CheckpointInfo] = {}
        self._legacy: dict[str, str] = {}
        self.refresh()

    # ---- listing -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Rescan the folders; hashes come from the cache only (nothing is hashed here)."""
        found: dict[str, CheckpointInfo] = {}
        seen_paths: set[Path] = set()
        for path, name, is_folder in self._candidates():
            resolved = path.resolve()
            if resolved in seen_paths:
                continue
            if name in found:
                log.warning("checkpoint %s skipped: %s has the same name", path, found[name].path)
                continue
            seen_paths.add(resolved)
            info = CheckpointInfo(path, name, _model_name(path, is_folder), is_folder=is_folder)
            found[name] = replace(info, hash=self._cached_hash(info))
        ordered = sorted(found.values(), key=lambda i: natural_key(i.name))
        with self._lock:
            self._items = {info.name: info for info in ordered}
            self._legacy = {}

    def _candidates(self) -> Iterator[tuple[Path, str, bool]]:
        # --ckpt files first, as in A1111: the file the user named wins a name clash.
        for file in self.paths.ckpt_files:
            if file.exists():
                yield file, self._name_for_file(file), file.is_dir()
        for root in self.paths.ckpt_dirs:
            if root.is_dir():
                for path, is_folder in _walk(root):
                    yield path, _relative_name(path, root), is_folder

    def _name_for_file(self, file: Path) -> str:
        for root in self.paths.ckpt_dirs:
            try:
                return _relative_name(file.resolve(), root.resolve())
            except ValueError:
                continue
        return file.name

    def _cached_hash(self, info: CheckpointInfo) -> str | None:
        if info.is_folder:
            return None
        try:
            return self.cache.get(info.cache_key, hashes.file_mtime(info.path))
        except OSError:
            return None

    def list(self) -> list[CheckpointInfo]:
        """All checkpoints in natural order of their names."""
        with self._lock:
            return list(self._items.values())

    def get(self, name: str) -> CheckpointInfo | None:
        """The entry with this exact name (relative path), current hash included."""
        with self._lock:
            return self._items.get(name)

    def title_of(self, info: CheckpointInfo) -> str:
        """The current title of `info` (with the hash once it is known, even if `info` is older)."""
        current = self.get(info.name)
        return (current or info).title

    def titles(self) -> list[str]:
        return [info.title for info in self.list()]

    # ---- hashes --------------------------------------------------------------------------
    def ensure_hash(self, info: CheckpointInfo) -> CheckpointInfo:
        """The entry with its sha256 computed (or taken from the cache); folders stay without one."""
        current = self.get(info.name) or info
        if current.hash or current.is_folder:
            return current
        value = hashes.cached_sha256(current.path, current.cache_key, self.cache)
        updated = replace(current, hash=value)
        with self._lock:
            if updated.name in self._items:
                self._items[updated.name] = updated
        return updated

    def legacy_hash(self, info: CheckpointInfo) -> str | None:
        """A1111's old 8-hex hash of a file (cheap: reads 64 KiB); None for folders or unreadable files."""
        if info.is_folder:
            return None
        with self._lock:
            known = self._legacy.get(info.name)
        if known is None:
            try:
                known = hashes.legacy_hash(info.path)
            except OSError:
                return None
            with self._lock:
                self._legacy[info.name] = known
        return known

    # ---- lookup --------------------------------------------------------------------------
    def find(self, query: str, *, compute_hashes: bool = False) -> CheckpointInfo | None:
        """Match a title, name, model name, path, sha256 (10 or 64 hex) or old 8-hex hash; None if none.

        Only known hashes are compared unless `compute_hashes` is set, because hashing every file
        of a large collection can take minutes.
        """
        text = (query or "").strip()
        if not text:
            return None
        items = self.list()
        for info in items:
            if text in (info.title, info.name):
                return info
        # A title saved before the hash was known, or with the hash of an older version of the file.
        if (match := _TITLE_HASH.match(text)) and (found := self.get(match.group(1))):
            return found
        for info in items:
            if text in (info.model_name, info.api_model_name):
                return info
        if found := self._find_by_path(text, items):
            return found
        lowered = text.lower()
        if _HEX.fullmatch(lowered) and (found := self._find_by_hash(lowered, items, compute_hashes)):
            return found
        # A1111's last resort: the shortest title containing the query.
        partial = sorted((i for i in items if text in i.title), key=lambda i: len(i.title))
        return partial[0] if partial else None

    def _find_by_path(self, text: str, items: Iterable[CheckpointInfo]) -> CheckpointInfo | None:
        try:
            wanted = Path(text).expanduser().resolve()
        except (OSError, RuntimeError, ValueError):
            return None
        return next((i for i in items if i.path.resolve() == wanted), None)

    def _find_by_hash(self, hexstr: str, items: list[CheckpointInfo], compute: bool) -> CheckpointInfo | None:
        if len(hexstr) in (10, 64):
            for info in items:
                if info.hash and info.hash.startswith(hexstr):
                    return info
            if compute:
                for info in items:
                    if not info.is_folder and self.ensure_hash(info).hash.startswith(hexstr):
                        return self.get(info.name)
        if len(hexstr) == 8:
            return next((i for i in items if self.legacy_hash(i) == hexstr), None)
        return None


# ---- VAE files ------------------------------------------------------------------------------
@dataclass(frozen=True)
class VaeFile:
    """A VAE weights file; `name` is what the "SD VAE" setting stores (the file name, as A1111)."""

    name: str
    path: Path


def list_vae_files(vae_dir: Path | str, ckpt_dirs: Iterable[Path | str] = ()) -> list[VaeFile]:
    """VAE files under `vae_dir` (recursive) plus `*.vae.*` files next to checkpoints; first name wins."""
    found: dict[str, VaeFile] = {}
    candidates = _files_under(Path(vae_dir), VAE_SUFFIXES)
    for folder in ckpt_dirs:
        candidates += _files_under(Path(folder), tuple(".vae" + suffix for suffix in VAE_SUFFIXES))
    for path in candidates:
        found.setdefault(path.name, VaeFile(path.name, path))
    return sorted(found.values(), key=lambda v: natural_key(v.name))


def _files_under(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.rglob("*")
        if p.name.lower().endswith(suffixes) and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts[:-1])
    )


def vae_choices(vae_files: Iterable[VaeFile]) -> list[str]:
    """Choices of the "SD VAE" setting: Automatic, None, then the file names."""
    return [*VAE_CHOICES, *(v.name for v in vae_files)]


def find_vae(vae_files: Iterable[VaeFile], name: str) -> VaeFile | None:
    """The VAE file whose name (or stem) is `name`; None for Automatic, None or an unknown name."""
    return next((v for v in vae_files if name in (v.name, Path(v.name).stem)), None)
