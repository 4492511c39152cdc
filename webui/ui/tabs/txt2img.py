"""txt2img tab: the prompt row, generation parameters on the left, the output panel on the right."""
from __future__ import annotations

import gradio as gr

from modules.generation.service import submit_generation
from webui.ui import forms
from webui.ui.components import (
    extension_sections,
    extra_networks,
    output,
    override_settings,
    params,
    prompt,
)
from webui.ui.components.runner import SessionJobs, session_key, stream_job
from webui.ui.packed_inputs import pack_inputs, wire_packed
from webui.ui.registry import SendTarget

TAB = "txt2img"


def build(ctx, ui) -> None:
    row = prompt.build(ctx, TAB)
    extra_networks.build(ctx, TAB, row.extra_networks)
    # Created first: the seed row's Reuse buttons read the result that the output panel keeps.
    state = gr.State(output.empty_state())
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, elem_id=f"{TAB}_settings", variant="compact"):
            fields: dict = {}
            fields.update(params.sampling(ui, TAB))
            fields.update(params.hires(ui, TAB))
            fields.update(params.refiner(ctx, ui, TAB))
            fields.update(params.size_and_batch(ui, TAB))
            fields.update(params.cfg(ui, TAB))
            fields.update(params.seed(ui, TAB, state))
            fields.update(override_settings.build(ctx, TAB))
            fields.update(extension_sections.build(ctx, TAB))
        with gr.Column(scale=1, elem_id=f"{TAB}_output_column"):
            panel = output.build(ctx, ui, TAB, state)
    fields = {"prompt": row.prompt, "negative_prompt": row.negative, "styles": row.styles, **fields}

    ui.add_target(SendTarget("txt2img", "txt2img", None, fields))
    prompt.wire_paste(row, fields, panel.state)
    wire_generate(ctx, TAB, row, fields, panel)


def wire_generate(ctx, tab: str, row, fields: dict, panel, *, extra_inputs: dict | None = None) -> None:
    """Generate (and Ctrl+Enter, which clicks it) streams the job into the panel; shared with img2img."""
    jobs = SessionJobs(ctx)
    form = pack_inputs({**fields, **(extra_inputs or {})}, f"{tab}_generate_form")

    async def on_generate(values: dict, request: gr.Request = None):
        async for update in stream_job(ctx, jobs, session_key(request, tab),
                                       lambda: forms.request_from_values(tab, values),
                                       lambda req: submit_generation(ctx, req)):
            yield update

    # No concurrency limit: several users queue in the job queue, which shows their place in line.
    output.wire_result(wire_packed(row.generate.click, form, on_generate, panel.stream_outputs,
                                   concurrency_limit=None, show_progress="hidden"), panel)
    output.wire_stop(tab, jobs, row.interrupt, row.skip)
