"""Slots for tabs that their own issues fill in; the tab and its element id exist from the start."""
from __future__ import annotations

import gradio as gr


def build(ctx, tab_id: str) -> None:
    gr.Markdown(f"The {tab_id} tab is not built yet.", elem_id=f"{tab_id}_placeholder")
