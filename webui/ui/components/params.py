"""Generation parameters shared by txt2img and img2img: sampler, steps, size, batch, CFG, the seed row with
its "Extra" variation row, hires fix and refiner sections, the script slot and the always-on slot.

Each builder returns {request field (or UI key): widget}; forms.py reads them by those names. Sliders go
through `ui.defaults.make`, so ui-config.json (the Settings "Defaults" page) can change their defaults.
"""
from __future__ import annotations

import logging

import gradio as gr

from modules.generation.hires import upscaler_names
from modules.images.infotext import parse_infotext
from modules.samplers import sampler_names, schedule_names

RANDOM_SEED = -1
log = logging.getLogger("webui.ui")


def sampling(ui, tab: str) -> dict:
    make = ui.defaults.make
    samplers, schedules = sampler_names(), schedule_names()
    with gr.Row(elem_id=f"{tab}_sampler_row"):
        sampler = make(gr.Dropdown, tab, "Sampling method", choices=samplers, value=samplers[0],
                       elem_id=f"{tab}_sampling", scale=2)
        scheduler = make(gr.Dropdown, tab, "Schedule type", choices=schedules, value=schedules[0],
                         elem_id=f"{tab}_scheduler", scale=2)
        steps = make(gr.Slider, tab, "Sampling steps", minimum=1, maximum=150, value=20, step=1,
                     elem_id=f"{tab}_steps", scale=3)
    return {"sampler_name": sampler, "scheduler": scheduler, "steps": steps}


def default_side(ui) -> int:
    """Width = height default: 512, or the trained demo model's native size when the start loads it."""
    size_of = getattr(ui.ctx, "default_image_size", None)  # test doubles of the context may lack it
    return size_of() if size_of is not None else 512


def size_and_batch(ui, tab: str) -> dict:
    make = ui.defaults.make
    side = default_side(ui)
    with gr.Row(elem_id=f"{tab}_dimensions_row"):
        with gr.Column(scale=4, elem_id=f"{tab}_column_size"):
            width = make(gr.Slider, tab, "Width", minimum=64, maximum=2048, value=side, step=8,
                         elem_id=f"{tab}_width")
            height = make(gr.Slider, tab, "Height", minimum=64, maximum=2048, value=side, step=8,
                          elem_id=f"{tab}_height")
        swap = gr.Button("Swap", elem_id=f"{tab}_res_switch_btn", size="sm", scale=0, min_width=56)
        with gr.Column(scale=2, elem_id=f"{tab}_column_batch"):
            batch_count = make(gr.Slider, tab, "Batch count", minimum=1, maximum=100, value=1, step=1,
                               elem_id=f"{tab}_batch_count")
            batch_size = make(gr.Slider, tab, "Batch size", minimum=1, maximum=8, value=1, step=1,
                              elem_id=f"{tab}_batch_size")
    swap.click(lambda w, h: (h, w), [width, height], [width, height], queue=False, show_progress="hidden")
    return {"width": width, "height": height, "n_iter": batch_count, "batch_size": batch_size}


def cfg(ui, tab: str) -> dict:
    scale = ui.defaults.make(gr.Slider, tab, "CFG Scale", minimum=1, maximum=30, value=7.0, step=0.5,
                             elem_id=f"{tab}_cfg_scale")
    return {"cfg_scale": scale}


def _last_seed(state, key: str) -> int:
    """Seed of the selected image of the last result (from its infotext), else random (-1)."""
    state = state or {}
    texts = state.get("infotexts") or []
    index = min(int(state.get("selected") or 0), len(texts) - 1) if texts else -1
    if index < 0:
        return RANDOM_SEED
    parsed = parse_infotext(texts[index])
    try:
        return int(parsed.get(key, RANDOM_SEED))
    except (TypeError, ValueError):
        return RANDOM_SEED


def seed(ui, tab: str, result_state: gr.State) -> dict:
    """Seed with random/reuse buttons and the "Extra" row (variation seed, strength, resize seed from)."""
    make = ui.defaults.make
    with gr.Row(elem_id=f"{tab}_seed_row"):
        seed_box = make(gr.Number, tab, "Seed", value=RANDOM_SEED, precision=0, elem_id=f"{tab}_seed", scale=4)
        random_seed = gr.Button("Random", elem_id=f"{tab}_random_seed", size="sm", scale=0, min_width=70)
        reuse_seed = gr.Button("Reuse", elem_id=f"{tab}_reuse_seed", size="sm", scale=0, min_width=64)
        show_extra = gr.Checkbox(label="Extra", value=False, elem_id=f"{tab}_subseed_show", scale=0,
                                 min_width=70)
    with gr.Group(visible=False, elem_id=f"{tab}_seed_extras") as extras:
        with gr.Row():
            subseed = make(gr.Number, tab, "Variation seed", value=RANDOM_SEED, precision=0,
                           elem_id=f"{tab}_subseed", scale=4)
            random_subseed = gr.Button("Random", elem_id=f"{tab}_random_subseed", size="sm", scale=0,
                                       min_width=70)
            reuse_subseed = gr.Button("Reuse", elem_id=f"{tab}_reuse_subseed", size="sm", scale=0, min_width=64)
            strength = make(gr.Slider, tab, "Variation strength", minimum=0, maximum=1, value=0, step=0.01,
                            elem_id=f"{tab}_subseed_strength", scale=4)
        with gr.Row():
            resize_w = make(gr.Slider, tab, "Resize seed from width", minimum=0, maximum=2048, value=0, step=8,
                            elem_id=f"{tab}_seed_resize_from_w")
            resize_h = make(gr.Slider, tab, "Resize seed from height", minimum=0, maximum=2048, value=0, step=8,
                            elem_id=f"{tab}_seed_resize_from_h")

    quick = {"queue": False, "show_progress": "hidden"}
    random_seed.click(lambda: RANDOM_SEED, None, seed_box, **quick)
    random_subseed.click(lambda: RANDOM_SEED, None, subseed, **quick)
    reuse_seed.click(lambda s: _last_seed(s, "Seed"), result_state, seed_box, **quick)
    reuse_subseed.click(lambda s: _last_seed(s, "Variation seed"), result_state, subseed, **quick)
    # .change, not .input: pasting an infotext with a variation seed opens the row too.
    show_extra.change(lambda on: gr.update(visible=bool(on)), show_extra, extras, **quick)
    return {"seed": seed_box, "subseed_show": show_extra, "subseed": subseed, "subseed_strength": strength,
            "seed_resize_from_w": resize_w, "seed_resize_from_h": resize_h}


def hires_upscaler_choices(ctx) -> list[str]:
    """Latent modes and resamplers, then the app's model upscalers (Real-ESRGAN, model files), as A1111."""
    try:
        from modules.postprocessing import registry_for

        return upscaler_names(registry_for(ctx))
    except Exception:  # a broken upscaler backend must not take txt2img down: the built-in modes remain
        log.exception("model upscalers are not listed for hires fix")
        return upscaler_names()


def hires(ui, tab: str) -> dict:
    make = ui.defaults.make
    samplers, schedules = sampler_names(), schedule_names()
    with gr.Accordion("Hires. fix", open=False, elem_id=f"{tab}_hr"):
        enable = make(gr.Checkbox, tab, "Enable hires. fix", value=False, elem_id=f"{tab}_enable_hr")
        with gr.Row():
            upscaler = make(gr.Dropdown, tab, "Upscaler", choices=hires_upscaler_choices(ui.ctx), value="Latent",
                            elem_id=f"{tab}_hr_upscaler")
            hr_steps = make(gr.Slider, tab, "Hires steps", minimum=0, maximum=150, value=0, step=1,
                            elem_id=f"{tab}_hires_steps")
            denoise = make(gr.Slider, tab, "Denoising strength", minimum=0, maximum=1, value=0.7, step=0.01,
                           elem_id=f"{tab}_denoising_strength")
        with gr.Row():
            scale = make(gr.Slider, tab, "Upscale by", minimum=1, maximum=4, value=2.0, step=0.05,
                         elem_id=f"{tab}_hr_scale")
            resize_x = make(gr.Slider, tab, "Resize width to", minimum=0, maximum=2048, value=0, step=8,
                            elem_id=f"{tab}_hr_resize_x")
            resize_y = make(gr.Slider, tab, "Resize height to", minimum=0, maximum=2048, value=0, step=8,
                            elem_id=f"{tab}_hr_resize_y")
        with gr.Row():
            hr_sampler = make(gr.Dropdown, tab, "Hires sampling method", choices=["Use same sampler", *samplers],
                              value="Use same sampler", elem_id=f"{tab}_hr_sampler")
            hr_scheduler = make(gr.Dropdown, tab, "Hires schedule type",
                                choices=["Use same scheduler", *schedules], value="Use same scheduler",
                                elem_id=f"{tab}_hr_scheduler")
            hr_cfg = make(gr.Slider, tab, "Hires CFG Scale", minimum=1, maximum=30, value=7.0, step=0.5,
                          elem_id=f"{tab}_hr_cfg")
        with gr.Row():
            hr_prompt = gr.Textbox(label="Hires prompt", lines=2, placeholder="empty = same prompt",
                                   elem_id=f"{tab}_hr_prompt")
            hr_negative = gr.Textbox(label="Hires negative prompt", lines=2, placeholder="empty = same prompt",
                                     elem_id=f"{tab}_hr_neg_prompt")
    return {"enable_hr": enable, "hr_upscaler": upscaler, "hr_second_pass_steps": hr_steps,
            "denoising_strength": denoise, "hr_scale": scale, "hr_resize_x": resize_x, "hr_resize_y": resize_y,
            "hr_sampler_name": hr_sampler, "hr_scheduler": hr_scheduler, "hr_cfg_scale": hr_cfg,
            "hr_prompt": hr_prompt, "hr_negative_prompt": hr_negative}


def refiner(ctx, ui, tab: str) -> dict:
    make = ui.defaults.make
    titles = [ctx.checkpoints.title_of(info) for info in ctx.checkpoints.list()]
    with gr.Accordion("Refiner", open=False, elem_id=f"{tab}_refiner"):
        enable = gr.Checkbox(label="Enable refiner", value=False, elem_id=f"{tab}_enable_refiner")
        with gr.Row():
            checkpoint = gr.Dropdown(titles, value=None, label="Checkpoint", elem_id=f"{tab}_refiner_checkpoint",
                                     allow_custom_value=True, scale=3)
            switch_at = make(gr.Slider, tab, "Switch at", minimum=0.01, maximum=1, value=0.8, step=0.01,
                             elem_id=f"{tab}_refiner_switch_at", scale=2)
    return {"refiner_enable": enable, "refiner_checkpoint": checkpoint, "refiner_switch_at": switch_at}
