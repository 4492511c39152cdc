"""Saved prompt styles (A1111's styles.csv: name, prompt, negative_prompt) as the style row sees them.

The core's store (`ctx.styles`, modules/prompts/styles.py) applies styles during generation. Until that
store exists this adapter reads and writes styles.csv itself, and the UI folds the chosen styles into the
prompts before submitting, so a chosen style is never silently ignored.
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

PLACEHOLDER = "{prompt}"


class StylesAdapter:
    """Style names, apply, save: through ctx.styles when the core has one, else styles.csv directly."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.path = Path(ctx.paths.styles_file)

    @property
    def core(self):
        return getattr(self.ctx, "styles", None)

    @property
    def applied_by_core(self) -> bool:
        """True when generation applies request.styles itself."""
        return self.core is not None

    def names(self) -> list[str]:
        if self.core is not None:
            if hasattr(self.core, "reload"):
                self.core.reload()
            return list(self.core.styles)
        return list(self._read())

    def apply(self, prompt: str, negative: str, names) -> tuple[str, str]:
        """Prompts with the styles folded in: `{prompt}` in a style is replaced, else the style is appended."""
        names = list(names or ())
        if self.core is not None:
            return (self.core.apply_styles_to_prompt(prompt, names),
                    self.core.apply_negative_styles_to_prompt(negative, names))
        styles = self._read()
        for name in names:
            style_prompt, style_negative = styles.get(name, ("", ""))
            prompt, negative = _merge(style_prompt, prompt), _merge(style_negative, negative)
        return prompt, negative

    def save(self, name: str, prompt: str, negative: str) -> None:
        """Add or replace style `name`."""
        name = (name or "").strip()
        if not name:
            raise ValueError("a style needs a name")
        if self.core is not None and hasattr(self.core, "save_style"):
            self.core.save_style(name, prompt, negative)
            return
        styles = self._read()
        styles[name] = (prompt or "", negative or "")
        self._write(styles)

    # -- styles.csv, A1111's columns ------------------------------------------------------------------

    def _read(self) -> dict[str, tuple[str, str]]:
        if not self.path.exists():
            return {}
        with open(self.path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh, skipinitialspace=True))
        return {row["name"]: (row.get("prompt") or "", row.get("negative_prompt") or "")
                for row in rows if row.get("name")}

    def _write(self, styles: dict[str, tuple[str, str]]) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["name", "prompt", "negative_prompt"])
        for name, (prompt, negative) in styles.items():
            writer.writerow([name, prompt, negative])
        # Written beside and renamed: the user's styles are never left half-written.
        fd, tmp = tempfile.mkstemp(prefix=".styles.", suffix=".tmp", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(buf.getvalue())
        os.replace(tmp, self.path)


def _merge(style: str, prompt: str) -> str:
    if not style:
        return prompt
    if PLACEHOLDER in style:
        return style.replace(PLACEHOLDER, prompt)
    if not prompt:
        return style
    return f"{prompt}, {style}"
