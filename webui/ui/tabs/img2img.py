"""img2img tab: sub-tabs img2img, sketch, inpaint, inpaint sketch, inpaint upload and batch; resize mode,
resize to / by, denoising strength, the inpaint controls, and the same output panel as txt2img.

Which sub-tab is in use lives in a State (set by the tabs' select events and by send-to), and forms.py
reads the image and mask of that sub-tab only, as A1111 does.
"""
from __future__ import annotations

import gradio as gr

from modules.generation.service import submit_generation
from modules.types import INPAINTING_FILL, RESIZE_MODES
from webui.ui import forms
from webui.ui.components import (
    batch_dir,
    extension_sections,
    extra_networks,
    interrogate,
    output,
    override_settings,
    params,
    prompt,
)
from webui.ui.components.runner import SessionJobs, session_key, stream_job
from webui.ui.packed_inputs import pack_inputs, wire_packed
from webui.ui.registry import SendTarget

TAB = "img2img"
# sub-tab id -> (label, A1111 element id of the tab)
MODES = {
    "img2img": ("img2img", "img2img_img2img_tab"),
    "sketch": ("Sketch", "img2img_img2img_sketch_tab"),
    "inpaint": ("Inpaint", "img2img_inpaint_tab"),
    "inpaint_sketch": ("Inpaint sketch", "img2img_inpaint_sketch_tab"),
    "inpaint_upload": ("Inpaint upload", "img2img_inpaint_upload_tab"),
    "batch": ("Batch", "img2img_batch_tab"),
}
EDITOR_HEIGHT = 420


def build(ctx, ui) -> None:
    row = prompt.build(ctx, TAB)
    interrogate_row = interrogate.build(ctx, TAB)  # only when an extension registered a tagger
    extra_networks.build(ctx, TAB, row.extra_networks)
    state = gr.State(output.empty_state())
    mode = gr.State("img2img")
    resize_by = gr.State(False)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, elem_id=f"{TAB}_settings", variant="compact"):
            images, subtabs, tab_widgets, batch = _image_tabs()
            fields = _resize(ui, resize_by)
            fields.update(params.sampling(ui, TAB))
            inpaint_fields, inpaint_box = _inpaint_controls(ui)
            fields.update(inpaint_fields)
            fields.update(_batch_and_strength(ui))
            fields.update(params.seed(ui, TAB, state))
            fields.update(override_settings.build(ctx, TAB))
            fields.update(extension_sections.build(ctx, TAB))
        with gr.Column(scale=1, elem_id=f"{TAB}_output_column"):
            panel = output.build(ctx, ui, TAB, state)

    # Inpaint controls matter in the inpaint sub-tabs only; elsewhere they would only confuse.
    for mode_id, tab_widget in tab_widgets.items():
        tab_widget.select(lambda m=mode_id: (m, gr.update(visible=m.startswith("inpaint"))), None,
                          [mode, inpaint_box], queue=False, show_progress="hidden")

    fields = {"prompt": row.prompt, "negative_prompt": row.negative, "styles": row.styles, **fields}
    send_fields = {k: v for k, v in fields.items() if k != "styles"}
    ui.add_target(SendTarget("img2img", "img2img", images["init_img"], send_fields, subtabs, "img2img", mode))
    ui.add_target(SendTarget("inpaint", "img2img", images["init_img_with_mask"], send_fields, subtabs,
                             "inpaint", mode))
    prompt.wire_paste(row, fields, state)
    interrogate.wire(ctx, interrogate_row, row.prompt, mode, images)

    jobs = SessionJobs(ctx)
    form = pack_inputs({**fields, **images, "img2img_mode": mode, "resize_by": resize_by, **batch},
                       f"{TAB}_generate_form")

    async def on_generate(values: dict, request: gr.Request = None):
        key = session_key(request, TAB)
        if values["img2img_mode"] == "batch":
            updates = batch_dir.run(ctx, jobs, key, values, lambda v: forms.request_from_values(TAB, v))
        else:
            updates = stream_job(ctx, jobs, key, lambda: forms.request_from_values(TAB, values),
                                 lambda req: submit_generation(ctx, req))
        async for update in updates:
            yield update

    output.wire_result(wire_packed(row.generate.click, form, on_generate, panel.stream_outputs,
                                   concurrency_limit=None, show_progress="hidden"), panel)
    output.wire_stop(TAB, jobs, row.interrupt, row.skip)


def _image_tabs():
    """The six sub-tabs: ({field: image widget}, the Tabs, {mode: Tab}, {field: batch widget})."""
    upload = ["upload", "clipboard"]
    tabs = {}
    with gr.Tabs(elem_id="mode_img2img", overflow_behavior="wrap") as subtabs:
        with _tab(tabs, "img2img"):
            init_img = gr.Image(label="Image for img2img", type="filepath", image_mode=None, sources=upload,
                                elem_id="img2img_image", height=EDITOR_HEIGHT)
        with _tab(tabs, "sketch"):
            sketch = gr.ImageEditor(label="Image for img2img", type="pil", image_mode="RGBA", sources=upload,
                                    elem_id="img2img_sketch", height=EDITOR_HEIGHT, layers=False,
                                    brush=gr.Brush(color_mode="defaults"))
        with _tab(tabs, "inpaint"):
            with_mask = gr.ImageMask(label="Image for inpainting with mask", type="pil", image_mode="RGBA",
                                     sources=upload, elem_id="img2maskimg", height=EDITOR_HEIGHT, layers=False,
                                     brush=gr.Brush(colors=["#ffffff"], color_mode="fixed"))
        with _tab(tabs, "inpaint_sketch"):
            color_sketch = gr.ImageEditor(label="Color sketch inpainting", type="pil", image_mode="RGBA",
                                          sources=upload, elem_id="inpaint_sketch", height=EDITOR_HEIGHT,
                                          layers=False, brush=gr.Brush(color_mode="defaults"))
        with _tab(tabs, "inpaint_upload"), gr.Row():
            base = gr.Image(label="Image for img2img", type="filepath", image_mode=None, sources=upload,
                            elem_id="img_inpaint_base", height=EDITOR_HEIGHT // 1.5)
            mask = gr.Image(label="Mask", type="filepath", image_mode=None, sources=upload,
                            elem_id="img_inpaint_mask", height=EDITOR_HEIGHT // 1.5)
        with _tab(tabs, "batch"):
            batch = batch_dir.build()
    images = {"init_img": init_img, "sketch": sketch, "init_img_with_mask": with_mask,
              "inpaint_color_sketch": color_sketch, "init_img_inpaint": base, "init_mask_inpaint": mask}
    return images, subtabs, tabs, batch


def _tab(tabs: dict, mode_id: str) -> gr.Tab:
    label, elem_id = MODES[mode_id]
    tabs[mode_id] = gr.Tab(label, id=mode_id, elem_id=elem_id)
    return tabs[mode_id]


def _resize(ui, resize_by: gr.State) -> dict:
    make = ui.defaults.make
    resize_mode = make(gr.Radio, TAB, "Resize mode", choices=list(RESIZE_MODES), value=RESIZE_MODES[0],
                       elem_id="resize_mode")
    with gr.Tabs(elem_id=f"{TAB}_tabs_resize", overflow_behavior="wrap"):
        with gr.Tab("Resize to", id="to", elem_id=f"{TAB}_tab_resize_to") as tab_to, gr.Row():
            with gr.Column(scale=4):
                side = params.default_side(ui)
                width = make(gr.Slider, TAB, "Width", minimum=64, maximum=2048, value=side, step=8,
                             elem_id=f"{TAB}_width")
                height = make(gr.Slider, TAB, "Height", minimum=64, maximum=2048, value=side, step=8,
                              elem_id=f"{TAB}_height")
            swap = gr.Button("Swap", elem_id=f"{TAB}_res_switch_btn", size="sm", scale=0, min_width=56)
        with gr.Tab("Resize by", id="by", elem_id=f"{TAB}_tab_resize_by") as tab_by:
            scale = make(gr.Slider, TAB, "Scale", minimum=0.05, maximum=4, value=1.0, step=0.05,
                         elem_id=f"{TAB}_scale")
    swap.click(lambda w, h: (h, w), [width, height], [width, height], queue=False, show_progress="hidden")
    tab_to.select(lambda: False, None, resize_by, queue=False, show_progress="hidden")
    tab_by.select(lambda: True, None, resize_by, queue=False, show_progress="hidden")
    return {"resize_mode": resize_mode, "width": width, "height": height, "scale_by": scale}


def _inpaint_controls(ui):
    make = ui.defaults.make
    with gr.Group(visible=False, elem_id=f"{TAB}_inpaint_controls") as box:
        mask_blur = make(gr.Slider, TAB, "Mask blur", minimum=0, maximum=64, value=4, step=1,
                         elem_id=f"{TAB}_mask_blur")
        mask_mode = make(gr.Radio, TAB, "Mask mode", choices=list(forms.MASK_MODES), value=forms.MASK_MODES[0],
                         elem_id=f"{TAB}_mask_mode")
        fill = make(gr.Radio, TAB, "Masked content", choices=list(INPAINTING_FILL), value="original",
                    elem_id=f"{TAB}_inpainting_fill")
        with gr.Row():
            area = make(gr.Radio, TAB, "Inpaint area", choices=list(forms.INPAINT_AREAS),
                        value=forms.INPAINT_AREAS[0], elem_id=f"{TAB}_inpaint_full_res")
            padding = make(gr.Slider, TAB, "Only masked padding, pixels", minimum=0, maximum=256, value=32,
                           step=4, elem_id=f"{TAB}_inpaint_full_res_padding")
    return {"mask_blur": mask_blur, "mask_mode": mask_mode, "inpainting_fill": fill, "inpaint_area": area,
            "inpaint_full_res_padding": padding}, box


def _batch_and_strength(ui) -> dict:
    make = ui.defaults.make
    with gr.Row():
        batch_count = make(gr.Slider, TAB, "Batch count", minimum=1, maximum=100, value=1, step=1,
                           elem_id=f"{TAB}_batch_count")
        batch_size = make(gr.Slider, TAB, "Batch size", minimum=1, maximum=8, value=1, step=1,
                          elem_id=f"{TAB}_batch_size")
    cfg = make(gr.Slider, TAB, "CFG Scale", minimum=1, maximum=30, value=7.0, step=0.5, elem_id=f"{TAB}_cfg_scale")
    denoise = make(gr.Slider, TAB, "Denoising strength", minimum=0, maximum=1, value=0.75, step=0.01,
                   elem_id=f"{TAB}_denoising_strength")
    return {"n_iter": batch_count, "batch_size": batch_size, "cfg_scale": cfg, "denoising_strength": denoise}
