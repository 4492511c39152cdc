"""Slots for tabs that their own issues fill in; the tab and its element id exist from the start."""
from __future__ import annotations

import gradio as gr

TEXTS = {
    "train": "Training (textual inversion, LoRA) is not part of this build yet.",
    "extensions": "Installed extensions will be listed here.",
}


def build(ctx, tab_id: str) -> None:
    gr.Markdown(TEXTS.get(tab_id, f"The {tab_id} tab is not built yet."), elem_id=f"{tab_id}_placeholder")
