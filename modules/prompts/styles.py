"""Saved prompt styles in A1111's `styles.csv` (name, prompt, negative_prompt).

A style's text either contains `{prompt}`, which the user's prompt replaces, or is appended after ", ".
Extracting styles back out of a prompt (reading infotext) reverses exactly that.
"""
from __future__ import annotations

import csv
import io
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from modules.files import write_text_atomic

log = logging.getLogger(__name__)
PLACEHOLDER = "{prompt}"


@dataclass(frozen=True)
class PromptStyle:
    """One row of styles.csv."""

    name: str
    prompt: str = ""
    negative_prompt: str = ""


def merge_style(style_text: str, prompt: str) -> str:
    """Apply one style's text to a prompt: fill `{prompt}`, or append with ", " (A1111's rule)."""
    if PLACEHOLDER in style_text:
        return style_text.replace(PLACEHOLDER, prompt)
    # Both sides stripped and empty ones skipped, as A1111 does, so infotexts read the same in both.
    return ", ".join(part for part in (prompt.strip(), style_text.strip()) if part)


def unmerge_style(style_text: str, prompt: str) -> str | None:
    """The prompt before `style_text` was applied, or None when the style is not in it."""
    prompt, style_text = prompt.strip(), style_text.strip()
    if not style_text:
        return prompt
    if PLACEHOLDER in style_text:
        head, _, tail = style_text.partition(PLACEHOLDER)
        if prompt.startswith(head) and prompt.endswith(tail) and len(prompt) >= len(head) + len(tail):
            return prompt[len(head):len(prompt) - len(tail)]
        return None
    if prompt == style_text:
        return ""
    # Stricter than A1111 (which only checks the ending): a style "hq" is not found in "not_hq". A prompt
    # produced by merge_style always has the ", " separator, so nothing real is missed.
    suffix = f", {style_text}"
    return prompt[: -len(suffix)] if prompt.endswith(suffix) else None


class StyleDatabase:
    """styles.csv loaded into memory; saving writes the whole file atomically."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.styles: dict[str, PromptStyle] = {}
        self.load_warning: str | None = None
        self.reload()

    def reload(self) -> None:
        """Read the file again; a missing file is no styles, an unreadable one a warning and no styles."""
        self.load_warning = None
        styles: dict[str, PromptStyle] = {}
        if self.path.exists():
            try:
                with open(self.path, encoding="utf-8-sig", newline="") as fh:
                    for row in csv.DictReader(fh, skipinitialspace=True):
                        name = (row.get("name") or "").strip()
                        # Very old A1111 files call the prompt column "text".
                        prompt = row.get("prompt") if "prompt" in row else row.get("text")
                        if name:
                            styles[name] = PromptStyle(name, prompt or "", row.get("negative_prompt") or "")
            except (OSError, csv.Error, UnicodeDecodeError) as exc:
                self.load_warning = f"{self.path.name} could not be read ({exc}); no styles loaded"
                log.warning(self.load_warning)
        with self._lock:
            self.styles = styles

    def names(self) -> list[str]:
        """Style names in file order."""
        return list(self.styles)

    def save_style(self, style: PromptStyle | str, prompt: str = "", negative_prompt: str = "") -> None:
        """Add or replace a style (a PromptStyle, or name, prompt, negative) and write the file."""
        if not isinstance(style, PromptStyle):
            style = PromptStyle(str(style or "").strip(), prompt or "", negative_prompt or "")
        if not style.name.strip():
            raise ValueError("a style needs a name")
        with self._lock:
            self.styles[style.name] = style
            self._write()

    def delete_style(self, name: str) -> None:
        """Remove a style (unknown names do nothing) and write the file."""
        with self._lock:
            if self.styles.pop(name, None) is not None:
                self._write()

    def apply_styles_to_prompt(self, prompt: str, names) -> str:
        """The prompt with each named style applied in order; unknown names are ignored."""
        for name in names:
            if name in self.styles:
                prompt = merge_style(self.styles[name].prompt, prompt)
        return prompt

    def apply_negative_styles_to_prompt(self, negative: str, names) -> str:
        """The negative prompt with each named style's negative applied in order."""
        for name in names:
            if name in self.styles:
                negative = merge_style(self.styles[name].negative_prompt, negative)
        return negative

    def extract_styles_from_prompt(self, prompt: str, negative: str) -> tuple[list[str], str, str]:
        """Find styles already applied to both prompts (as A1111 does when reading infotext).

        Returns (style names, prompt without them, negative without them); styles applied last are
        removed first, so the order of application is preserved in the returned names.
        """
        found: list[str] = []
        changed = True
        while changed:
            changed = False
            for style in self.styles.values():
                if not (style.prompt or style.negative_prompt) or style.name in found:
                    continue
                p = unmerge_style(style.prompt, prompt)
                n = unmerge_style(style.negative_prompt, negative)
                if p is not None and n is not None:
                    found.insert(0, style.name)
                    prompt, negative, changed = p, n, True
                    break
        return found, prompt, negative

    def _write(self) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["name", "prompt", "negative_prompt"])
        for style in self.styles.values():
            writer.writerow([style.name, style.prompt, style.negative_prompt])
        write_text_atomic(self.path, buf.getvalue())
