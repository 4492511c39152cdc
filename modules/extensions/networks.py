"""Cards of the extra-networks browser (the panel under the prompt), as data shared by core and extensions.

A page of the browser is any provider with `cards()`: the core offers Checkpoints and Textual Inversion;
an extension's extra-network provider (LoRA) adds its page by having these methods (all optional but
`cards`):

    title: str                                  the page's tab label ("Lora")
    cards() -> list[NetworkCard]                 what the page shows, as scanned last
    refresh() -> None                            rescan the folders (the Refresh button)

User metadata (A1111's per-model "edit metadata" dialog) is a JSON file beside the model, `name.json`,
with A1111's keys; any network kind reads and writes it through the two functions below, so a file
edited by A1111 reads the same here and the other way round.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modules.files import write_json_atomic

# A1111's keys in name.json; unknown keys a user (or A1111) wrote are kept as they are on save.
USER_METADATA_KEYS = ("description", "sd version", "activation text", "preferred weight", "negative text",
                      "notes")
PREVIEW_SUFFIXES = (".preview.png", ".png", ".preview.jpg", ".jpg", ".preview.jpeg", ".jpeg",
                    ".preview.webp", ".webp", ".preview.gif", ".gif")


@dataclass(frozen=True)
class NetworkCard:
    """One card: `prompt` is what clicking it inserts into the active prompt (for a LoRA
    `<lora:alias:weight>` plus its activation text; for a checkpoint empty: clicking selects it)."""

    name: str
    prompt: str
    path: str = ""
    preview: str | None = None  # image file shown on the card, None: no preview
    description: str = ""
    search_terms: tuple[str, ...] = ()  # matched by the search box besides the name (alias, hash, folder)
    sort_keys: dict[str, Any] = field(default_factory=dict)  # "name", "date_created", "date_modified", "path"
    metadata: dict[str, Any] = field(default_factory=dict)  # the file's own metadata (metadata view)
    user_metadata: dict[str, Any] = field(default_factory=dict)
    negative_prompt: str = ""  # inserted into the negative prompt (user metadata "negative text")


def user_metadata_path(model_path: str | Path) -> Path:
    """`models/Lora/film.safetensors` -> `models/Lora/film.json` (A1111's place for user metadata)."""
    path = Path(model_path)
    return path.with_suffix(".json") if path.suffix else path.with_name(path.name + ".json")


def read_user_metadata(model_path: str | Path) -> dict[str, Any]:
    """The user metadata saved beside a model; {} when there is none or it is not a JSON object."""
    file = user_metadata_path(model_path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_user_metadata(model_path: str | Path, values: dict[str, Any]) -> Path:
    """Merge `values` into the model's name.json (atomic write; other keys kept); returns the file."""
    file = user_metadata_path(model_path)
    data = read_user_metadata(model_path)
    data.update(values)
    write_json_atomic(file, data)
    return file


def find_preview(model_path: str | Path) -> Path | None:
    """`name.preview.png`, then `name.png` (and jpg/webp/gif) beside the model, as A1111 looks for them."""
    path = Path(model_path)
    stem = path.with_suffix("") if path.suffix else path
    for suffix in PREVIEW_SUFFIXES:
        candidate = stem.with_name(stem.name + suffix)
        if candidate.is_file():
            return candidate
    return None
