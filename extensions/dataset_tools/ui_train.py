"""The Train tab's content: sub-tabs Preprocess (extensions/dataset_tools/ui_preprocess.py, when present),
Caption and Tag editor. webui/ui/tabs/train.py renders it in place of the tab's placeholder."""
from __future__ import annotations

import gradio as gr

from . import ui_caption, ui_tags

PREPROCESS_MISSING = "Preprocessing is not part of this build yet; caption and tag a folder in the next tabs."


def build(api, service) -> None:
    with gr.Tabs(elem_id="train_tabs"):
        with gr.Tab("Preprocess", id="train_preprocess", elem_id="train_preprocess_tab"):
            _preprocess(api)
        with gr.Tab("Caption", id="train_caption", elem_id="train_caption_tab"):
            ui_caption.build(api, service)
        with gr.Tab("Tag editor", id="train_tag_editor", elem_id="train_tag_editor_tab"):
            ui_tags.build(api, service)


def _preprocess(api) -> None:
    from . import HERE

    if not (HERE / "ui_preprocess.py").is_file():
        gr.Markdown(PREPROCESS_MISSING, elem_id="train_preprocess_placeholder")
        return
    from . import ui_preprocess

    ui_preprocess.build(api)
