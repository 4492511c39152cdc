"""Top bar: checkpoint dropdown with refresh (quicksettings) and the demo-model notice."""
from __future__ import annotations

import gradio as gr

from modules.context import switch_model


def checkpoint_titles(ctx) -> list[str]:
    return [ctx.checkpoints.title_of(info) for info in ctx.checkpoints.list()]


def notice_markdown(ctx) -> str:
    lines = []
    if ctx.demo_active or any("demo model" in n for n in ctx.notices):
        lines.append(next((n for n in ctx.notices if "demo model" in n),
                          "The demo model is active: it makes abstract images."))
    if ctx.model_error:
        lines.append(f"Checkpoint problem: {ctx.model_error}")
    return "\n\n".join(lines)


def build(ctx) -> None:
    with gr.Row(elem_id="quicksettings"):
        ckpt = gr.Dropdown(choices=checkpoint_titles(ctx), value=ctx.settings.get("sd_model_checkpoint") or None,
                           label="Stable Diffusion checkpoint", elem_id="setting_sd_model_checkpoint",
                           allow_custom_value=True, scale=4)
        refresh = gr.Button("Refresh", elem_id="refresh_sd_model_checkpoint", scale=0, min_width=80, size="sm")
    notice = gr.Markdown(notice_markdown(ctx), elem_id="demo_notice", visible=bool(notice_markdown(ctx)))

    def on_refresh():
        ctx.checkpoints.refresh()
        return gr.update(choices=checkpoint_titles(ctx))

    def on_change(title):
        if not title:
            return gr.update(), gr.update()
        job = ctx.jobs.submit("load-model", lambda job_ctx: switch_model(ctx, title), description="switch checkpoint")
        job.wait_result()
        if job.error:
            ctx.model_error = job.error
        text = notice_markdown(ctx)
        return gr.update(value=ctx.settings.get("sd_model_checkpoint")), gr.update(value=text, visible=bool(text))

    refresh.click(on_refresh, outputs=ckpt)
    ckpt.change(on_change, inputs=ckpt, outputs=[ckpt, notice])
