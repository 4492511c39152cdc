"""Extras tab: upscale single images, an uploaded batch, or a folder; upscaler 1 and 2 with visibility,
scale by / scale to; the steps extensions add (api.add_extras_step: split, focal crop, flipped copies,
caption, ...) follow as accordions, each with an Enable checkbox, in run order.

The work runs on the job worker (one GPU user at a time) through modules.postprocessing.
"""
from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from modules.extensions.hooks import describe_exception

from webui.ui.components import output
from webui.ui.components.runner import SessionJobs, session_key, stream_job
from webui.ui.components.server_folders import server_folder
from webui.ui.packed_inputs import pack_inputs, wire_packed
from webui.ui.registry import SendTarget

TAB = "extras"
log = logging.getLogger("webui.ui")
SINGLE, BATCH, DIRECTORY = "single_image", "batch_process", "batch_from_directory"
STEP_PREFIX = "step:"  # step:<step name>:<arg name>, one form field per step widget


def postprocessing():
    """The module with run_extras, or None while this build has none (the tab then says so)."""
    try:
        from modules import postprocessing
    except ImportError:
        return None
    return postprocessing if hasattr(postprocessing, "run_extras") else None


def upscaler_choices(ctx) -> list[str]:
    """Upscaler names from the core's registry; a broken backend must not take the whole page down."""
    module = postprocessing()
    if module is None:
        return ["None"]
    try:
        return list(module.upscaler_names(ctx))
    except Exception:
        log.exception("upscalers unavailable")
        return ["None"]


def unavailable_choices(ctx) -> str:
    """Markdown listing the upscalers that could not load here and why; "" when all did."""
    module = postprocessing()
    try:
        rows = module.unavailable_upscalers(ctx) if module is not None else {}
    except Exception:
        log.exception("upscalers unavailable")
        return ""
    lines = [f"- **{name}**: {reason}" for name, reason in rows.items()]
    return "Unavailable upscalers:\n" + "\n".join(lines) if lines else ""


def build(ctx, ui) -> None:
    make = ui.defaults.make
    mode = gr.State(SINGLE)
    scale_to = gr.State(False)
    choices = upscaler_choices(ctx)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, variant="compact", elem_id=f"{TAB}_settings"):
            with gr.Tabs(elem_id="mode_extras", overflow_behavior="wrap") as subtabs:
                with gr.Tab("Single Image", id=SINGLE, elem_id="extras_single_tab") as tab_single:
                    image = gr.Image(label="Source", type="filepath", image_mode=None, elem_id="extras_image",
                                     sources=["upload", "clipboard"], height=360)
                with gr.Tab("Batch Process", id=BATCH, elem_id="extras_batch_process_tab") as tab_batch:
                    files = gr.File(label="Batch Process", file_count="multiple", file_types=["image"],
                                    elem_id="extras_image_batch")
                with gr.Tab("Batch from Directory", id=DIRECTORY, elem_id="extras_batch_directory_tab") as tab_dir:
                    input_dir = gr.Textbox(label="Input directory", elem_id="extras_batch_input_dir")
                    output_dir = gr.Textbox(label="Output directory", elem_id="extras_batch_output_dir")
                    show_results = gr.Checkbox(label="Show result images", value=True,
                                               elem_id="extras_show_extras_results")
            generate = gr.Button("Generate", variant="primary", elem_id="extras_generate")
            with gr.Tabs(elem_id="extras_resize_mode", overflow_behavior="wrap"):
                with gr.Tab("Scale by", id="by", elem_id="extras_scale_by_tab") as tab_by:
                    resize = make(gr.Slider, TAB, "Resize", minimum=1.0, maximum=8.0, step=0.05, value=4,
                                  elem_id="extras_upscaling_resize")
                with gr.Tab("Scale to", id="to", elem_id="extras_scale_to_tab") as tab_to:
                    with gr.Row():
                        width = make(gr.Slider, TAB, "Width", minimum=64, maximum=8192, step=8, value=512,
                                     elem_id="extras_upscaling_resize_w")
                        height = make(gr.Slider, TAB, "Height", minimum=64, maximum=8192, step=8, value=512,
                                      elem_id="extras_upscaling_resize_h")
                    crop = gr.Checkbox(label="Crop to fit", value=True, elem_id="extras_upscaling_crop")
            with gr.Row():
                upscaler_1 = make(gr.Dropdown, TAB, "Upscaler 1", choices=choices, value=choices[0],
                                  elem_id="extras_upscaler_1")
                upscaler_2 = make(gr.Dropdown, TAB, "Upscaler 2", choices=choices, value=choices[0],
                                  elem_id="extras_upscaler_2")
            visibility = make(gr.Slider, TAB, "Upscaler 2 visibility", minimum=0.0, maximum=1.0, step=0.001,
                              value=0.0, elem_id="extras_upscaler_2_visibility")
            unavailable = unavailable_choices(ctx)
            if unavailable:  # what is missing and how to get it, instead of rows that silently are not there
                gr.Markdown(unavailable, elem_id="extras_upscalers_unavailable")
            step_fields = build_steps(ctx)
            if postprocessing() is None:
                gr.Markdown("Upscalers are not installed in this build yet.", elem_id="extras_unavailable")
        with gr.Column(scale=1, elem_id=f"{TAB}_output_column"):
            panel = output.build(ctx, ui, TAB, sends=("img2img", "inpaint"), folder_kind="extras")

    for tab, mode_id in ((tab_single, SINGLE), (tab_batch, BATCH), (tab_dir, DIRECTORY)):
        tab.select(lambda m=mode_id: m, None, mode, queue=False, show_progress="hidden")
    tab_by.select(lambda: False, None, scale_to, queue=False, show_progress="hidden")
    tab_to.select(lambda: True, None, scale_to, queue=False, show_progress="hidden")
    ui.add_target(SendTarget("extras", "extras", image, {}, subtabs, SINGLE, mode))

    inputs = {"mode": mode, "image": image, "files": files, "input_dir": input_dir, "output_dir": output_dir,
              "show_results": show_results, "scale_to": scale_to, "upscaling_resize": resize,
              "upscaling_resize_w": width, "upscaling_resize_h": height, "upscaling_crop": crop,
              "upscaler_1": upscaler_1, "upscaler_2": upscaler_2, "extras_upscaler_2_visibility": visibility,
              **step_fields}
    form = pack_inputs(inputs, f"{TAB}_generate_form")
    jobs = SessionJobs(ctx)

    async def on_generate(values: dict, request: gr.Request = None):
        async for update in stream_job(ctx, jobs, session_key(request, TAB),
                                       lambda: extras_request(ctx, values), lambda req: submit_extras(ctx, req)):
            yield update

    output.wire_result(wire_packed(generate.click, form, on_generate, panel.stream_outputs,
                                   concurrency_limit=None, show_progress="hidden"), panel)


def build_steps(ctx) -> dict[str, Any]:
    """An accordion per registered step (Enable checkbox, then the step's widgets); returns the form fields.
    A step whose widgets fail to build is reported on the Extensions tab and shown as a note, not a crash."""
    module = postprocessing()
    system = getattr(ctx, "extensions", None)
    try:
        steps = module.registered_steps(ctx) if module is not None else []
    except Exception:
        log.exception("extras steps unavailable")
        steps = []
    providers = system.registry.providers("extras_step") if system is not None else []
    owners = {p.name: p.extension for p in providers}
    fields: dict[str, Any] = {}
    with gr.Column(elem_id="extras_scripts", visible=bool(steps)):
        for step in steps:
            slug = _slug(step.name)
            with gr.Accordion(step.name, open=False, elem_id=f"extras_step_{slug}"):
                fields[f"{STEP_PREFIX}{step.name}:enable"] = gr.Checkbox(
                    label="Enable", value=False, elem_id=f"extras_step_{slug}_enable",
                    info=step.description or None)
                try:
                    widgets = dict(step.build_ui() or {}) if step.build_ui is not None else {}
                except Exception as exc:
                    owner = owners.get(step.name, step.name)
                    if system is not None:
                        system.errors.add(owner, f"Extras step {step.name!r}: {describe_exception(exc)}")
                    log.error("Extras step %s could not build its widgets: %s", step.name, exc)
                    gr.Markdown(f"The {owner} extension could not build this step's settings; it runs with "
                                "its defaults. See the Extensions tab.")
                    widgets = {}
            for arg, component in widgets.items():
                if isinstance(component, gr.blocks.Block) and arg != "enable":
                    fields[f"{STEP_PREFIX}{step.name}:{arg}"] = component
    return fields


def steps_from_values(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{step name: {arg: value}} for the enabled steps, from the prefixed form fields (which are removed)."""
    by_step: dict[str, dict[str, Any]] = {}
    for key in [k for k in values if k.startswith(STEP_PREFIX)]:
        name, _, arg = key[len(STEP_PREFIX):].rpartition(":")
        by_step.setdefault(name, {})[arg] = values.pop(key)
    return {name: args for name, args in by_step.items() if args.get("enable")}


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def extras_request(ctx, values: dict):
    """The postprocessing request from the widget values (A1111's extras API names); the folders it names are
    made absolute and, with --listen, kept inside the data dir (server_folders.py)."""
    module = postprocessing()
    if module is None:
        raise ValueError("Extras needs the upscalers (modules/postprocessing), which this build does not have")
    values = dict(values)
    values["steps"] = steps_from_values(values)
    named = {key: (values.get(key) or "").strip() for key in ("input_dir", "output_dir")}
    if values.get("mode") != DIRECTORY:
        named["input_dir"] = ""  # only "Batch from directory" reads one; the output folder is for every mode
    for key, text in named.items():
        if text:
            values[key] = str(server_folder(ctx, text, key))
    return module.request_from_values(values)


def submit_extras(ctx, request):
    module = postprocessing()
    return ctx.jobs.submit("extras", lambda job_ctx: module.run_extras(ctx, request, job_ctx),
                           description="extras")
