"""The widgets of the dataset steps in the Extras tab: each builder runs inside the step's accordion (made by
the Extras tab, with its Enable checkbox) and returns {arg name: component}, the names extras_steps.py reads.
Element ids start with extras_ and the step, so a page test or a user script can find them."""
from __future__ import annotations

from typing import Any

import gradio as gr

from .preprocess_ops import FLIP_MODES, AutoSizeOptions


def _size(prefix: str) -> dict[str, Any]:
    with gr.Row():
        width = gr.Slider(64, 2048, value=512, step=8, label="Width", elem_id=f"{prefix}_width")
        height = gr.Slider(64, 2048, value=512, step=8, label="Height", elem_id=f"{prefix}_height")
    return {"width": width, "height": height}


def split_ui() -> dict[str, Any]:
    args = _size("extras_split")
    with gr.Row():
        args["threshold"] = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Threshold",
                                      elem_id="extras_split_threshold")
        args["overlap"] = gr.Slider(0.0, 0.9, value=0.2, step=0.05, label="Overlap ratio",
                                    elem_id="extras_split_overlap")
    return args


def focal_ui(defaults: dict[str, Any]) -> dict[str, Any]:
    args = _size("extras_focal")
    with gr.Row():
        for key, label in (("face_weight", "Focal point face weight"),
                           ("entropy_weight", "Focal point entropy weight"),
                           ("edges_weight", "Focal point edges weight")):
            args[key] = gr.Slider(0.0, 1.0, value=defaults[key], step=0.05, label=label,
                                  elem_id=f"extras_focal_{key}")
    return args


def autosize_ui() -> dict[str, Any]:
    d = AutoSizeOptions()
    with gr.Row():
        min_side = gr.Slider(64, 2048, value=d.min_side, step=64, label="Dimension lower bound",
                             elem_id="extras_autosize_min_side")
        max_side = gr.Slider(64, 2048, value=d.max_side, step=64, label="Dimension upper bound",
                             elem_id="extras_autosize_max_side")
    with gr.Row():
        min_area = gr.Slider(64 * 64, 2048 * 2048, value=d.min_area, step=64 * 64, label="Area lower bound",
                             elem_id="extras_autosize_min_area")
        max_area = gr.Slider(64 * 64, 2048 * 2048, value=d.max_area, step=64 * 64, label="Area upper bound",
                             elem_id="extras_autosize_max_area")
    with gr.Row():
        objective = gr.Radio(["area", "error"], value=d.objective, label="Resizing objective",
                             elem_id="extras_autosize_objective")
        max_error = gr.Slider(0.01, 1.0, value=d.max_error, step=0.01, label="Error threshold",
                              elem_id="extras_autosize_max_error")
    return {"min_side": min_side, "max_side": max_side, "min_area": min_area, "max_area": max_area,
            "objective": objective, "max_error": max_error}


def flip_ui() -> dict[str, Any]:
    option = gr.CheckboxGroup(list(FLIP_MODES), value=["Horizontal"], show_label=False,
                              elem_id="extras_flip_option")
    return {"option": option}


def caption_ui(service, base) -> dict[str, Any]:
    from .ui_caption import tagger_choices

    choices = tagger_choices(service)
    tagger = gr.Dropdown(choices, value=choices[1] if len(choices) > 3 else choices[0], label="Tagger",
                         elem_id="extras_caption_tagger")
    with gr.Row():
        general = gr.Slider(0, 1, value=base.general_threshold, step=0.01, label="General tag threshold",
                            elem_id="extras_caption_general_threshold")
        character = gr.Slider(0, 1, value=base.character_threshold, step=0.01,
                              label="Character tag threshold", elem_id="extras_caption_character_threshold")
    return {"tagger": tagger, "general_threshold": general, "character_threshold": character}
