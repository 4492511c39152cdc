"""The Train tab (A1111 id tab_train): the extension tab with elem_id "train" (the built-in dataset_tools:
Preprocess, Caption, Tag editor) fills it; without one it keeps its placeholder."""
from __future__ import annotations

from webui.ui.extension_tabs import render_slot
from webui.ui.tabs import placeholder


def build(ctx, ui) -> None:
    if not render_slot(ctx, "train"):
        placeholder.build(ctx, "train")
