"""Caption panel: a folder on the server, a tagger and its options, the mode; writes the caption files
and shows what was written and skipped."""
from __future__ import annotations

import html

import gradio as gr

from .caption_files import CAPTION_EXTENSIONS
from .captions import FILENAME, MODES, CaptionRequest
from .tagger_settings import options_from_settings
from .taggers.options import TagOptions, split_tags


def tagger_choices(service) -> list[str]:
    return [FILENAME, *service.taggers.wd14.models(), "deepdanbooru", "clip"]


def build(api, service) -> None:
    choices = tagger_choices(service)
    base = options_from_settings(api)  # Settings -> Interrogate gives the starting values
    with gr.Row():
        folder = gr.Textbox(label="Dataset folder (on the server)", elem_id="caption_dir", scale=4,
                            placeholder="datasets/my_set (inside the data dir) or an absolute path")
        tagger = gr.Dropdown(choices, value=choices[1] if len(choices) > 3 else FILENAME, label="Tagger",
                             elem_id="caption_tagger", scale=2)
        refresh = gr.Button("Refresh", elem_id="caption_tagger_refresh", size="sm", scale=0, min_width=60)
    with gr.Row():
        general = gr.Slider(0, 1, value=base.general_threshold, step=0.01, label="General tag threshold",
                            elem_id="caption_general_threshold")
        character = gr.Slider(0, 1, value=base.character_threshold, step=0.01,
                              label="Character tag threshold", elem_id="caption_character_threshold")
        max_tags = gr.Number(base.max_tags, precision=0, minimum=0, label="Max tags (0: no limit)",
                             elem_id="caption_max_tags")
    with gr.Row():
        additional = gr.Textbox(", ".join(base.additional), label="Additional tags (first in every caption)",
                                elem_id="caption_additional")
        exclude = gr.Textbox(", ".join(base.exclude), label="Exclude tags", elem_id="caption_exclude")
    with gr.Row():
        ratings = gr.Checkbox(base.include_ratings, label="Rating tag", elem_id="caption_ratings")
        underscores = gr.Checkbox(base.replace_underscores, label="Underscores to spaces",
                                  elem_id="caption_underscores")
        escape = gr.Checkbox(base.escape_brackets, label="Escape brackets", elem_id="caption_escape")
        by_confidence = gr.Checkbox(base.sort_by_confidence, label="Sort by confidence",
                                    elem_id="caption_sort")
    with gr.Row():
        mode = gr.Radio(list(MODES), value="overwrite", label="Existing captions", elem_id="caption_mode")
        extension = gr.Radio(list(CAPTION_EXTENSIONS), value=".txt", label="Caption file",
                             elem_id="caption_extension")
    run = gr.Button("Caption", variant="primary", elem_id="caption_run")
    result = gr.HTML(elem_id="caption_result")

    def on_caption(folder_text, tagger_name, g, c, m, add, exc, r, u, e, s, mode_value, ext,
                   progress=gr.Progress()):
        try:
            options = TagOptions(float(g), float(c), bool(r), tuple(split_tags(exc)), tuple(split_tags(add)),
                                 bool(u), bool(e), bool(s), int(m or 0))
            request = CaptionRequest(service.folder(folder_text), tagger_name, options, mode_value, ext)
            report = service.caption(request, lambda done, total: progress((done, total), unit="images"))
        except (ValueError, LookupError, OSError) as exc_:
            return f"<div class='gen-error'>{html.escape(str(exc_))}</div>"
        return report_html(report)

    run.click(on_caption, [folder, tagger, general, character, max_tags, additional, exclude, ratings,
                           underscores, escape, by_confidence, mode, extension], result)
    refresh.click(lambda current: gr.update(choices=tagger_choices(service), value=current), tagger, tagger,
                  show_progress="hidden")


def report_html(report) -> str:
    parts = [f"<p id='caption_summary'>{html.escape(report.summary())}</p>"]
    if report.skipped:
        rows = "".join(f"<li>{html.escape(name)}: {html.escape(reason)}</li>"
                       for name, reason in report.skipped)
        parts.append(f"<ul class='caption-skipped'>{rows}</ul>")
    return "".join(parts)
