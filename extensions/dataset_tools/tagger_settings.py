"""Settings of interrogation (Settings -> "Interrogate", listed and set by /sdapi/v1/options): the caption
options img2img's Interrogate buttons and /sdapi/v1/interrogate use, and the Caption tab starts from."""
from __future__ import annotations

from dataclasses import fields

from .taggers.options import TagOptions, split_tags

SECTION = "Interrogate"
PREFIX = "tagger_"
LABELS = {
    "general_threshold": "Tagger: general tag threshold (0..1)",
    "character_threshold": "Tagger: character tag threshold (0..1)",
    "include_ratings": "Tagger: put the rating tag first",
    "exclude": "Tagger: tags to leave out (comma-separated)",
    "additional": "Tagger: tags to put first (comma-separated)",
    "replace_underscores": "Tagger: underscores to spaces (kaomoji such as ^_^ keep theirs)",
    "escape_brackets": "Tagger: escape brackets (\\( \\))",
    "sort_by_confidence": "Tagger: sort by confidence (else alphabetically)",
    "max_tags": "Tagger: at most this many tags (0: no limit)",
}
LIST_FIELDS = ("exclude", "additional")  # kept as text in settings, tuples in TagOptions


def add_settings(api) -> None:
    base = TagOptions()
    for name, label in LABELS.items():
        value = getattr(base, name)
        default = ", ".join(value) if name in LIST_FIELDS else value
        api.add_setting(PREFIX + name, default, label, section=SECTION)


def options_from_settings(api) -> TagOptions:
    """The current settings as TagOptions; a missing or bad value keeps its default."""
    base = TagOptions()
    values = {}
    for f in fields(TagOptions):
        try:
            value = api.setting(PREFIX + f.name)
        except Exception:  # noqa: BLE001 - no settings store (a bare API object in tests) or not registered
            continue
        if f.name in LIST_FIELDS:
            value = tuple(split_tags(str(value or "")))
        values[f.name] = value
    try:
        return TagOptions(**{**{f.name: getattr(base, f.name) for f in fields(TagOptions)}, **values})
    except (TypeError, ValueError):
        return base
