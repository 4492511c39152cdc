"""Top bar: the quicksettings (checkpoint with refresh, plus whatever `quicksettings_list` names, e.g. SD VAE
and Clip skip) and the demo-model / checkpoint-problem notice."""
from __future__ import annotations

import gradio as gr

from modules.context import demo_notice, switch_model
from modules.settings import SettingsError
from webui.ui.components import setting_widgets

CHECKPOINT = "sd_model_checkpoint"


def notice_markdown(ctx) -> str:
    lines = []
    if ctx.demo_active or any("demo model" in n for n in ctx.notices):
        lines.append(next((n for n in ctx.notices if "demo model" in n), None)
                     or demo_notice(ctx.paths, ctx.demo_kind))
    if ctx.model_error:
        lines.append(f"Checkpoint problem: {ctx.model_error}")
    return "\n\n".join(lines)


def quicksetting_keys(ctx) -> list[str]:
    """The checkpoint always, then the keys of `quicksettings_list` that are real settings (A1111 order)."""
    known = {spec.key for spec in ctx.settings.specs()}
    wanted = [CHECKPOINT, *(ctx.settings.get("quicksettings_list") or [])]
    return [key for i, key in enumerate(wanted) if key in known and key not in wanted[:i]]


def build(ctx, ui) -> None:
    specs = {spec.key: spec for spec in ctx.settings.specs()}
    checkpoint = refresh = None
    with gr.Row(elem_id="quicksettings", equal_height=True):
        for key in quicksetting_keys(ctx):
            widget = setting_widgets.make(ctx, specs[key], scale=4 if key == CHECKPOINT else 2, min_width=200)
            if key == CHECKPOINT:
                checkpoint = widget
                refresh = gr.Button("Refresh", elem_id="refresh_sd_model_checkpoint", scale=0, min_width=80,
                                    size="sm")
            else:
                _wire_setting(ctx, key, widget)
    text = notice_markdown(ctx)
    notice = gr.Markdown(text, elem_id="demo_notice", visible=bool(text))
    _wire_checkpoint(ctx, checkpoint, refresh, notice)

    def on_load():
        # The page was built at start-up; the model may have loaded (or failed) since.
        text = notice_markdown(ctx)
        return [gr.update(value=ctx.settings.get(CHECKPOINT) or None), gr.update(value=text, visible=bool(text))]

    ui.on_load(on_load, [checkpoint, notice])


def _wire_checkpoint(ctx, dropdown, refresh, notice) -> None:
    def on_refresh():
        ctx.checkpoints.refresh()
        return gr.update(choices=setting_widgets.dynamic_choices(ctx, CHECKPOINT))

    def on_change(title):
        if not title or title == ctx.settings.get(CHECKPOINT):
            return gr.skip(), gr.skip()
        # Loading runs on the job worker, after any generation in progress, never beside it.
        job = ctx.jobs.submit("load-model", lambda job_ctx: switch_model(ctx, title),
                              description="switch checkpoint")
        job.wait()
        if job.error:
            ctx.model_error = job.error
        text = notice_markdown(ctx)
        return gr.update(value=ctx.settings.get(CHECKPOINT)), gr.update(value=text, visible=bool(text))

    refresh.click(on_refresh, outputs=dropdown, show_progress="hidden")
    dropdown.input(on_change, inputs=dropdown, outputs=[dropdown, notice])
    # A1111's hidden `change_checkpoint`: selectCheckpoint(name) (a checkpoint card of the extra-networks
    # browser, or an extension) sets window.desiredCheckpointName and clicks it; the switch is the dropdown's.
    change = gr.Button("Change checkpoint", elem_id="change_checkpoint", visible="hidden")
    change.click(on_change, inputs=dropdown, outputs=[dropdown, notice], show_progress="hidden",
                 js="(v) => { const name = window.desiredCheckpointName; window.desiredCheckpointName = '';"
                    " return [name || v]; }")


def _wire_setting(ctx, key: str, widget) -> None:
    def on_change(value):
        try:
            ctx.settings.update({key: value})
        except SettingsError as exc:
            gr.Warning(str(exc))

    widget.input(on_change, widget, None, show_progress="hidden")
