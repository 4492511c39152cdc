"""txt2img tab: prompt boxes, sampling parameters, Generate, and the output gallery."""
from __future__ import annotations

import html

import gradio as gr

from modules.generation.service import submit_generation
from modules.types import GenerationRequest


def sampler_names() -> list[str]:
    from modules.samplers import list_samplers

    return [s["name"] for s in list_samplers()]


def build(ctx) -> None:
    tab = "txt2img"
    with gr.Row():
        with gr.Column(scale=6):
            prompt = gr.Textbox(label="Prompt", lines=3, elem_id=f"{tab}_prompt", placeholder="Prompt")
            negative = gr.Textbox(label="Negative prompt", lines=2, elem_id=f"{tab}_neg_prompt",
                                  placeholder="Negative prompt")
        with gr.Column(scale=1, min_width=160):
            generate = gr.Button("Generate", variant="primary", elem_id=f"{tab}_generate")
            with gr.Row():
                interrupt = gr.Button("Interrupt", elem_id=f"{tab}_interrupt", size="sm")
                skip = gr.Button("Skip", elem_id=f"{tab}_skip", size="sm")
    with gr.Row():
        with gr.Column(scale=1):
            samplers = sampler_names()
            sampler = gr.Dropdown(samplers, value=samplers[0] if samplers else None, label="Sampling method",
                                  elem_id=f"{tab}_sampling")
            steps = gr.Slider(1, 150, value=20, step=1, label="Sampling steps", elem_id=f"{tab}_steps")
            with gr.Row():
                width = gr.Slider(64, 2048, value=512, step=8, label="Width", elem_id=f"{tab}_width")
                height = gr.Slider(64, 2048, value=512, step=8, label="Height", elem_id=f"{tab}_height")
            with gr.Row():
                batch_count = gr.Slider(1, 100, value=1, step=1, label="Batch count", elem_id=f"{tab}_batch_count")
                batch_size = gr.Slider(1, 8, value=1, step=1, label="Batch size", elem_id=f"{tab}_batch_size")
            cfg = gr.Slider(1, 30, value=7, step=0.5, label="CFG Scale", elem_id=f"{tab}_cfg_scale")
            seed = gr.Number(value=-1, precision=0, label="Seed", elem_id=f"{tab}_seed")
        with gr.Column(scale=1):
            gallery = gr.Gallery(label="Output", elem_id=f"{tab}_gallery", columns=2, height=512)
            info = gr.HTML(elem_id=f"html_info_{tab}")

    def run(prompt_text, negative_text, sampler_name, n_steps, w, h, n_iter, size, cfg_scale, seed_value):
        request = GenerationRequest(
            mode="txt2img", prompt=prompt_text or "", negative_prompt=negative_text or "",
            sampler_name=sampler_name or "Euler", steps=int(n_steps), width=int(w), height=int(h),
            n_iter=int(n_iter), batch_size=int(size), cfg_scale=float(cfg_scale),
            seed=int(seed_value if seed_value is not None else -1),
        )
        job = submit_generation(ctx, request)
        result = job.wait_result()
        if job.error:
            return gr.update(), f"<p class='gen-error'>{html.escape(job.error)}</p>"
        text = "<br>".join(html.escape(t).replace("\n", "<br>") for t in result.infotexts[:1])
        return list(result.images), f"<p>{text}</p>"

    generate.click(run, inputs=[prompt, negative, sampler, steps, width, height, batch_count, batch_size, cfg, seed],
                   outputs=[gallery, info])
    interrupt.click(lambda: ctx.jobs.interrupt(), None, None)
    skip.click(lambda: ctx.jobs.skip(), None, None)
