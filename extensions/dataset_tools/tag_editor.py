"""The tag editor's model: a dataset folder's images with their tags, the frequency table, bulk edits
and per-image edits, saved with a backup so every save can be undone.

Saving writes only captions whose tags changed. Before writing, the old caption files are copied into
`<folder>/.tag_backups/<id>/` (with `created.json` naming the files that did not exist); `undo` puts the
newest backup back byte for byte and removes it. Each file is replaced atomically, so a failed write
leaves the old caption.
"""
from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .caption_files import caption_extension, caption_path, list_images, read_caption, write_all_atomic
from .taggers.options import dedupe, split_tags

BACKUP_DIR = ".tag_backups"
CREATED_FILE = "created.json"
ACTIONS = ("add", "remove", "replace", "move_to_front")


@dataclass(frozen=True)
class Entry:
    """One image and its caption's tags (empty when it has no caption file)."""

    image: Path
    caption: Path
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Dataset:
    folder: Path
    extension: str
    entries: tuple[Entry, ...]

    def frequencies(self) -> list[tuple[str, int]]:
        """(tag, number of images with it), most frequent first, then by name."""
        counts = Counter(tag for entry in self.entries for tag in set(entry.tags))
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    def by_name(self) -> dict[str, Entry]:
        return {entry.image.name: entry for entry in self.entries}

    def entry(self, image_name: str) -> Entry:
        found = self.by_name().get(image_name)
        if found is None:
            raise KeyError(f"{image_name}: not an image of {self.folder}")
        return found


def load_dataset(folder: Path, extension: str = ".txt") -> Dataset:
    folder = Path(folder)
    extension = caption_extension(extension)
    entries = []
    for image in list_images(folder):
        caption = caption_path(image, extension)
        entries.append(Entry(image, caption, tuple(split_tags(read_caption(caption) or ""))))
    return Dataset(folder, extension, tuple(entries))


@dataclass(frozen=True)
class BulkEdit:
    """One bulk action on the tags of `images` (all images when empty).
    add: `tags` appended (or put first with `front`); remove: `tags` removed; replace: each of `tags`
    becomes `replace_with` (removed when that is empty); move_to_front: `tags` first, in the given order."""

    action: str
    tags: tuple[str, ...]
    replace_with: str = ""
    front: bool = False
    images: tuple[str, ...] = ()

    def __post_init__(self):
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {self.action!r}")
        if not [t for t in self.tags if t.strip()]:
            raise ValueError(f"{self.action}: no tags given")


def edit_tags(tags: tuple[str, ...], edit: BulkEdit) -> tuple[str, ...]:
    """The tags after one bulk edit (pure)."""
    wanted = [t.strip() for t in edit.tags if t.strip()]
    current = list(tags)
    if edit.action == "add":
        new = [t for t in wanted if t not in current]
        current = new + current if edit.front else current + new
    elif edit.action == "remove":
        current = [t for t in current if t not in wanted]
    elif edit.action == "replace":
        target = edit.replace_with.strip()
        current = [target if t in wanted else t for t in current]
        current = [t for t in current if t]
    elif edit.action == "move_to_front":
        present = [t for t in wanted if t in current]
        current = present + [t for t in current if t not in present]
    return tuple(dedupe(current))


def apply_edit(dataset: Dataset, edit: BulkEdit) -> dict[str, tuple[str, ...]]:
    """{image name: new tags} for the images whose tags the edit changes."""
    chosen = set(edit.images)
    changes = {}
    for entry in dataset.entries:
        if chosen and entry.image.name not in chosen:
            continue
        new = edit_tags(entry.tags, edit)
        if new != entry.tags:
            changes[entry.image.name] = new
    return changes


def with_changes(dataset: Dataset, changes: dict[str, tuple[str, ...]]) -> Dataset:
    """The dataset as it would be with unsaved `changes` (the editor shows this before Save)."""
    entries = tuple(Entry(e.image, e.caption, tuple(changes.get(e.image.name, e.tags)))
                    for e in dataset.entries)
    return Dataset(dataset.folder, dataset.extension, entries)


def save(dataset: Dataset, changes: dict[str, tuple[str, ...]]) -> str | None:
    """Write the changed captions after backing up the current files; returns the backup id (None when
    nothing changed). Per-image edits come here too: {image name: tags}."""
    index = dataset.by_name()
    targets = []
    for name, tags in changes.items():
        entry = index.get(name)
        if entry is None:
            raise KeyError(f"{name}: not an image of {dataset.folder}")
        if tuple(tags) != entry.tags or not entry.caption.exists():
            targets.append((entry, tuple(tags)))
    if not targets:
        return None
    backup = _new_backup(dataset.folder)
    try:
        created = []
        for entry, _ in targets:
            if entry.caption.exists():
                shutil.copy2(entry.caption, backup / entry.caption.name)
            else:
                created.append(entry.caption.name)
        (backup / CREATED_FILE).write_text(json.dumps(created))
        # the backups are flushed with the new captions, before any caption is replaced
        write_all_atomic({entry.caption: ", ".join(tags).encode("utf-8") for entry, tags in targets})
    except BaseException:
        shutil.rmtree(backup, ignore_errors=True)  # no undo entry for a save that did not happen
        raise
    return backup.name


def backups(folder: Path) -> list[str]:
    """Backup ids, oldest first."""
    root = Path(folder) / BACKUP_DIR
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def undo(folder: Path) -> list[str]:
    """Undo the newest save: restore its files byte for byte, delete files it created; returns the
    caption names restored. Raises LookupError when there is nothing to undo."""
    folder = Path(folder)
    ids = backups(folder)
    if not ids:
        raise LookupError(f"{folder}: nothing to undo")
    backup = folder / BACKUP_DIR / ids[-1]
    created_file = backup / CREATED_FILE
    created = json.loads(created_file.read_text()) if created_file.is_file() else []
    saved_files = sorted(p for p in backup.iterdir() if p.name != CREATED_FILE)
    write_all_atomic({folder / saved.name: saved.read_bytes() for saved in saved_files})
    restored = []
    for saved in saved_files:
        shutil.copystat(saved, folder / saved.name)
        restored.append(saved.name)
    for name in created:
        (folder / name).unlink(missing_ok=True)
        restored.append(name)
    shutil.rmtree(backup)
    return sorted(restored)


def _new_backup(folder: Path) -> Path:
    root = folder / BACKUP_DIR
    root.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        path = root / f"{stamp}-{n:03d}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"{root}: cannot make a new backup folder")
