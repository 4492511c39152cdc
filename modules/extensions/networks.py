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


def tag_frequency(metadata: dict[str, Any]) -> list[tuple[str, int]]:
    """Training tags of a kohya LoRA: `ss_tag_frequency` ({dataset: {tag: count}}, as a JSON string in
    the safetensors header or already parsed) summed over datasets, most frequent first, then by name."""
    raw = metadata.get("ss_tag_frequency")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return []
    if not isinstance(raw, dict):
        return []
    totals: dict[str, int] = {}
    for tags in raw.values():
        if not isinstance(tags, dict):
            continue
        for tag, count in tags.items():
            try:
                totals[str(tag).strip()] = totals.get(str(tag).strip(), 0) + int(count)
            except (TypeError, ValueError):
                continue  # a hand-edited header with a non-number count: that tag is left out
    totals.pop("", None)
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


# Header keys that name the model a network was trained on (kohya's ss_*, then the modelspec standard).
BASE_MODEL_KEYS = ("ss_sd_model_name", "ss_base_model_version", "modelspec.architecture", "sd version")


def base_model(metadata: dict[str, Any], user_metadata: dict[str, Any] | None = None) -> str:
    """What the network was trained on, for the metadata view: the user's "sd version" if set, else the
    file's header (kohya's ss_sd_model_name / ss_base_model_version, modelspec.architecture); "" unknown."""
    chosen = str((user_metadata or {}).get("sd version") or "").strip()
    if chosen and chosen.lower() != "unknown":
        return chosen
    found = [str(metadata[key]).strip() for key in BASE_MODEL_KEYS if str(metadata.get(key) or "").strip()]
    return " / ".join(dict.fromkeys(found))


MAX_HEADER_BYTES = 100 * 2**20  # a safetensors header larger than this is not a header


def read_file_metadata(model_path: str | Path) -> dict[str, str]:
    """The `__metadata__` of a .safetensors file's header (its first bytes only); {} for other files,
    a missing file or a broken header."""
    path = Path(model_path)
    if path.suffix.lower() != ".safetensors":
        return {}
    try:
        with path.open("rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if not 0 < size <= MAX_HEADER_BYTES:
                return {}
            header = json.loads(fh.read(size))
    except (OSError, ValueError):
        return {}
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def find_preview(model_path: str | Path) -> Path | None:
    """`name.preview.png`, then `name.png` (and jpg/webp/gif) beside the model, as A1111 looks for them."""
    path = Path(model_path)
    stem = path.with_suffix("") if path.suffix else path
    for suffix in PREVIEW_SUFFIXES:
        candidate = stem.with_name(stem.name + suffix)
        if candidate.is_file():
            return candidate
    return None
