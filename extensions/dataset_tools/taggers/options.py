"""From a tagger's confidences to a caption: thresholds, ratings, exclusions, formatting. Pure Python.

A tagger answers `TagScores` (rating, general and character confidences, 0..1, names as the model's CSV
spells them, with underscores); `select_tags(scores, options)` applies `TagOptions` and gives the tags
in caption order: additional tags first, then the top rating (if asked), then the model's tags.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# Characters that mean something in a prompt (attention, scheduling): escaped so a tag stays literal.
_PROMPT_SYNTAX = re.compile(r"([\\()\[\]])")


@dataclass(frozen=True)
class TagScores:
    """One image's confidences (0..1) per tag name, by WD14 category."""

    rating: dict[str, float] = field(default_factory=dict)
    general: dict[str, float] = field(default_factory=dict)
    character: dict[str, float] = field(default_factory=dict)

    def tags(self) -> dict[str, float]:
        """General and character tags together (the wd14-tagger API's "tag" dict)."""
        return {**self.general, **self.character}


@dataclass(frozen=True)
class TagOptions:
    """How confidences become a caption. Thresholds are 0..1 (a tag is kept at >= threshold);
    max_tags 0 keeps every tag above its threshold."""

    general_threshold: float = 0.35
    character_threshold: float = 0.85
    include_ratings: bool = False
    exclude: tuple[str, ...] = ()
    additional: tuple[str, ...] = ()
    replace_underscores: bool = True
    escape_brackets: bool = True
    sort_by_confidence: bool = True
    max_tags: int = 0

    def __post_init__(self):
        for name in ("general_threshold", "character_threshold"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        if int(self.max_tags) < 0:
            raise ValueError(f"max_tags must be 0 (no limit) or more, not {self.max_tags}")


def split_tags(text: str) -> list[str]:
    """'a, b ,, c' -> ['a', 'b', 'c'] (a caption file or a comma-separated field)."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def is_kaomoji(tag: str) -> bool:
    """Face tags such as ^_^, o_o or (o)_(o): their underscore is the mouth, not a word break.
    Both sides of the single underscore hold at most one letter or digit."""
    parts = tag.split("_")
    return len(parts) == 2 and all(sum(c.isalnum() for c in p) <= 1 for p in parts)


def format_tag(name: str, options: TagOptions) -> str:
    """A model tag name as written into a caption (spaces for underscores, prompt syntax escaped)."""
    text = name
    if options.replace_underscores and not is_kaomoji(name):
        text = text.replace("_", " ")
    if options.escape_brackets:
        text = _PROMPT_SYNTAX.sub(r"\\\1", text)
    return text


def _key(tag: str) -> str:
    """Tags compare without caring for underscores vs spaces, escaping or case."""
    return tag.replace("\\", "").replace("_", " ").strip().lower()


def select_tags(scores: TagScores, options: TagOptions) -> list[str]:
    """The caption's tags, in order (see the module docstring); no tag appears twice."""
    excluded = {_key(t) for t in options.exclude}
    # 1. model tags above their category's threshold
    picked = [(name, p) for name, p in scores.general.items() if p >= options.general_threshold]
    picked += [(name, p) for name, p in scores.character.items() if p >= options.character_threshold]
    picked = [(name, p) for name, p in picked if _key(name) not in excluded]
    # 2. order: highest confidence first (ties by name, so the order never depends on the CSV), or by name
    if options.sort_by_confidence:
        picked.sort(key=lambda item: (-item[1], item[0]))
    else:
        picked.sort(key=lambda item: item[0])
    if options.max_tags:
        picked = picked[: int(options.max_tags)]
    tags = [format_tag(name, options) for name, _ in picked]
    # 3. the most likely rating, then the user's own tags in front
    if options.include_ratings and scores.rating:
        top = max(scores.rating.items(), key=lambda item: item[1])[0]
        if _key(top) not in excluded:
            tags.insert(0, format_tag(top, options))
    tags = [t for t in options.additional if t.strip()] + tags
    return dedupe(tags)


def dedupe(tags: list[str]) -> list[str]:
    """First occurrence wins; 'long_hair' and 'long hair' count as the same tag."""
    seen: set[str] = set()
    out = []
    for tag in tags:
        key = _key(tag)
        if key not in seen:
            seen.add(key)
            out.append(tag)
    return out


def caption_text(scores: TagScores, options: TagOptions) -> str:
    return ", ".join(select_tags(scores, options))
