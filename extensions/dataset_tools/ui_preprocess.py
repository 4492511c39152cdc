"""Train -> Preprocess: the form, a progress bar with eta while the job runs, Interrupt, and the report.

The form is turned into the same PreprocessRequest the API takes (routes_preprocess.py), so the page and
`POST /dataset/v1/preprocess` share validation, the folder rules and the job: the run is a job on the
app's queue (it waits for a running generation), and Interrupt stops it between two files.
"""
from __future__ import annotations

import html
import time
from typing import Any

from .preprocess_ops import CROP_MODES, RESIZE_MODES
from .routes_preprocess import (
    PreprocessRequest,
    focal_defaults,
    make_captioner,
    options_from_request,
    submit_preprocess,
)

POLL_S = 0.25
NO_TAGGER = "(none)"
# Form fields in the order build() passes the components, named as PreprocessRequest's fields.
FIELDS = ("source_dir", "destination_dir", "width", "height", "crop", "resize_mode", "flip", "focal_face_weight",
          "focal_entropy_weight", "focal_edges_weight", "focal_debug", "split_threshold", "split_overlap",
          "autosize_min_side", "autosize_max_side", "autosize_objective", "repeats", "name", "caption_filename",
          "existing_caption", "tagger")
INTEGER_FIELDS = ("width", "height", "autosize_min_side", "autosize_max_side", "repeats")


def request_from_form(values: dict[str, Any]) -> PreprocessRequest:
    """The form's values as the API's request (raises pydantic's ValidationError, a ValueError)."""
    data = dict(values)
    for key in INTEGER_FIELDS:
        if data.get(key) is not None:
            data[key] = int(data[key])
    if data.get("tagger") in (None, NO_TAGGER):
        data["tagger"] = ""
    return PreprocessRequest(**data)


def start(api, values: dict[str, Any]) -> str:
    """Validate the form and queue the run; returns the job id (raises ValueError/LookupError with the reason)."""
    req = request_from_form(values)
    options = options_from_request(api, req)
    captioner = make_captioner(api, req.tagger, req.general_threshold, req.character_threshold)
    return submit_preprocess(api, options, captioner)


def status_html(state: str, progress: float, eta_s: float, textinfo: str) -> str:
    """The progress bar: a <progress> element, the percentage, the eta and the file in work."""
    percent = max(0.0, min(1.0, progress)) * 100
    eta = f", ETA {eta_s:.0f} s" if state == "running" and eta_s > 0 else ""
    where = "waiting for the job queue" if state == "queued" else textinfo
    return (f"<div id='preprocess_progress'><progress max='100' value='{percent:.0f}'></progress> "
            f"<span>{percent:.0f}%{eta} {html.escape(where)}</span></div>")


def report_html(state: str, report: dict | None, error: str | None = None) -> str:
    """The finished run: summary, files skipped with why, and warnings."""
    if error:
        return f"<div class='gen-error' id='preprocess_error'>{html.escape(error)}</div>"
    if not report:
        return f"<p id='preprocess_summary'>The run was {html.escape(state)} before it started.</p>"
    text = (f"{report['processed']} of {report['total']} files processed, {len(report['written'])} images "
            f"written to {report['output_dir']}, {len(report['skipped'])} skipped")
    if report.get("interrupted"):
        text += " (interrupted)"
    parts = [f"<p id='preprocess_summary'>{html.escape(text)}</p>"]
    if report["skipped"]:
        rows = "".join(f"<li>{html.escape(s['file'])}: {html.escape(s['reason'])}</li>" for s in report["skipped"])
        parts.append(f"<ul id='preprocess_skipped'>{rows}</ul>")
    if report.get("warnings"):
        rows = "".join(f"<li>{html.escape(w)}</li>" for w in report["warnings"])
        parts.append(f"<ul id='preprocess_warnings'>{rows}</ul>")
    return "".join(parts)


def follow(api, job_id: str, poll_s: float = POLL_S):
    """Yield (status html, finished) while the job runs, then its report once."""
    while True:
        job = api.job(job_id)
        if job is None:
            yield report_html("lost", None, "the job is no longer known (the queue's history is short)"), True
            return
        if job.finished:
            error = job.error if job.state == "failed" else None
            yield report_html(job.state, job.result, error), True
            return
        snap = job.snapshot()
        yield status_html(job.state, snap.progress, snap.eta_relative, snap.textinfo), False
        time.sleep(poll_s)


def tagger_names(api) -> list[str]:
    """NO_TAGGER first, then the captions part's taggers when it is there."""
    try:
        from .service import DatasetService

        return [NO_TAGGER, *DatasetService.from_api(api).taggers.names()]
    except Exception:  # noqa: BLE001 - no tagger part, or it failed: preprocessing still works
        return [NO_TAGGER]


def build(api) -> None:
    import gradio as gr

    weights = focal_defaults(api)
    with gr.Row():
        source = gr.Textbox(label="Source directory", elem_id="preprocess_src", scale=3,
                            placeholder="datasets/raw (inside the data dir) or an absolute path")
        dest = gr.Textbox(label="Destination directory", elem_id="preprocess_dst", scale=3,
                          placeholder="datasets/train (never the source or inside it)")
    with gr.Row():
        width = gr.Slider(64, 2048, value=512, step=8, label="Width", elem_id="preprocess_width")
        height = gr.Slider(64, 2048, value=512, step=8, label="Height", elem_id="preprocess_height")
    with gr.Row():
        crop = gr.Radio(list(CROP_MODES), value="focal", label="Crop", elem_id="preprocess_crop")
        resize_mode = gr.Radio(list(RESIZE_MODES), value="stretch", label="Resize (crop: none)",
                               elem_id="preprocess_resize_mode")
        flip = gr.Checkbox(False, label="Create flipped copies", elem_id="preprocess_flip")
    with gr.Accordion("Focal point crop", open=False):
        with gr.Row():
            face = gr.Slider(0, 1, value=weights.face, step=0.05, label="Face weight", elem_id="preprocess_face_w")
            entropy = gr.Slider(0, 1, value=weights.entropy, step=0.05, label="Entropy weight",
                                elem_id="preprocess_entropy_w")
            edges = gr.Slider(0, 1, value=weights.edges, step=0.05, label="Edges weight",
                              elem_id="preprocess_edges_w")
            debug = gr.Checkbox(False, label="Create debug image", elem_id="preprocess_focal_debug")
    with gr.Accordion("Split oversized images, auto-sized crop", open=False):
        with gr.Row():
            split_threshold = gr.Slider(0, 2, value=0.5, step=0.05, label="Split image threshold",
                                        elem_id="preprocess_split_threshold")
            split_overlap = gr.Slider(0, 0.9, value=0.2, step=0.05, label="Split image overlap ratio",
                                      elem_id="preprocess_overlap")
        with gr.Row():
            min_side = gr.Slider(64, 2048, value=384, step=64, label="Dimension lower bound",
                                 elem_id="preprocess_autosize_min")
            max_side = gr.Slider(64, 2048, value=768, step=64, label="Dimension upper bound",
                                 elem_id="preprocess_autosize_max")
            objective = gr.Radio(["area", "error"], value="area", label="Auto-size objective",
                                 elem_id="preprocess_autosize_objective")
    with gr.Row():
        repeats = gr.Number(0, precision=0, minimum=0, label="kohya repeats (0: no <repeats>_<name> folder)",
                            elem_id="preprocess_repeats")
        name = gr.Textbox(label="kohya name", elem_id="preprocess_name", placeholder="face")
    with gr.Row():
        caption_filename = gr.Checkbox(False, label="Filename as caption", elem_id="preprocess_caption_filename")
        existing = gr.Radio(["ignore", "copy", "prepend", "append"], value="ignore", label="Existing caption",
                            elem_id="preprocess_existing_caption")
        tagger = gr.Dropdown(tagger_names(api), value=NO_TAGGER, label="Caption with tagger",
                             elem_id="preprocess_tagger")
    with gr.Row():
        run = gr.Button("Preprocess", variant="primary", elem_id="preprocess_run")
        interrupt = gr.Button("Interrupt", elem_id="preprocess_interrupt")
    status = gr.HTML(elem_id="preprocess_status")
    job_id = gr.State("")
    inputs = [source, dest, width, height, crop, resize_mode, flip, face, entropy, edges, debug, split_threshold,
              split_overlap, min_side, max_side, objective, repeats, name, caption_filename, existing, tagger]
    assert len(inputs) == len(FIELDS)

    def on_run(*values):
        try:
            new_id = start(api, dict(zip(FIELDS, values)))
        except (ValueError, LookupError, OSError) as exc:
            yield report_html("refused", None, _reason(exc)), ""
            return
        for text, _finished in follow(api, new_id):
            yield text, new_id

    def on_interrupt(current: str):
        if current:
            api.cancel_job(current)

    run.click(on_run, inputs, [status, job_id], show_progress="hidden")
    interrupt.click(on_interrupt, job_id, None, show_progress="hidden")


def _reason(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic: "width: Input should be ..." rather than its long text
        try:
            return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors())
        except Exception:  # noqa: BLE001
            pass
    return str(exc)

