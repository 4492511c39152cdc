"""Saved prompt styles (styles.csv) as the style row uses them: a thin view over the core's StyleDatabase.

Generation applies `request.styles` itself (ctx.styles); the row only lists, folds in ("Apply style")
and saves styles.
"""
from __future__ import annotations

from modules.prompts.styles import PromptStyle, StyleDatabase


class StylesAdapter:
    """Style names, apply and save through ctx.styles (or a store on styles.csv for a bare context)."""

    def __init__(self, ctx):
        self.store = getattr(ctx, "styles", None) or StyleDatabase(ctx.paths.styles_file)

    def names(self) -> list[str]:
        self.store.reload()  # the file may have been edited by hand since
        return self.store.names()

    def apply(self, prompt: str, negative: str, names) -> tuple[str, str]:
        """Prompts with the styles folded in: `{prompt}` in a style is replaced, else the style is appended."""
        names = list(names or ())
        return (self.store.apply_styles_to_prompt(prompt, names),
                self.store.apply_negative_styles_to_prompt(negative, names))

    def save(self, name: str, prompt: str, negative: str) -> None:
        """Add or replace style `name` with the current prompts."""
        self.store.save_style(PromptStyle((name or "").strip(), prompt or "", negative or ""))
