"""Prompt matrix: `a cat|red|blue` makes one image for every combination of the parts after the first
("a cat", "a cat, red", "a cat, blue", "a cat, red, blue") and a grid whose columns and rows name
which parts each image has (the left-out ones grey and struck through).

Written for the A1111 adapter with A1111's names only; `script_args` in A1111's ui() order:
put_at_start, different_seeds, prompt_type ("positive"/"negative"), variations_delimiter
("comma"/"space"), margin_size.
"""
from __future__ import annotations

import math

import gradio as gr

from modules import images, processing, scripts
from modules.processing import process_images
from modules.shared import log

TITLE = "Prompt matrix"


def matrix_prompts(parts: list[str], put_at_start: bool, delimiter: str) -> list[str]:
    """Every combination, in A1111's order: combination n has part i+1 when bit i of n is set. The
    variable parts are stripped of spaces and commas; the first part is kept as written (A1111)."""
    prompts = []
    for combination in range(2 ** (len(parts) - 1)):
        chosen = [text.strip().strip(",") for i, text in enumerate(parts[1:]) if combination & (1 << i)]
        chosen = [*chosen, parts[0]] if put_at_start else [parts[0], *chosen]
        prompts.append(delimiter.join(chosen))
    return prompts


class Script(scripts.Script):
    def title(self):
        return TITLE

    def ui(self, is_img2img):
        gr.HTML("<br />")
        with gr.Row():
            with gr.Column():
                put_at_start = gr.Checkbox(label="Put variable parts at start of prompt", value=False,
                                           elem_id=self.elem_id("put_at_start"))
                different_seeds = gr.Checkbox(label="Use different seed for each picture", value=False,
                                              elem_id=self.elem_id("different_seeds"))
            with gr.Column():
                prompt_type = gr.Radio(choices=["positive", "negative"], label="Select prompt",
                                       value="positive", elem_id=self.elem_id("prompt_type"))
                variations_delimiter = gr.Radio(choices=["comma", "space"], label="Select joining char",
                                                value="comma", elem_id=self.elem_id("variations_delimiter"))
            with gr.Column():
                margin_size = gr.Slider(label="Grid margins (px)", minimum=0, maximum=500, value=0, step=2,
                                        elem_id=self.elem_id("margin_size"))
        return [put_at_start, different_seeds, prompt_type, variations_delimiter, margin_size]

    def run(self, p, put_at_start=False, different_seeds=False, prompt_type="positive",
            variations_delimiter="comma", margin_size=0, *_newer_args):
        processing.fix_seed(p)
        if prompt_type not in ("positive", "negative"):
            raise ValueError(f"{TITLE}: prompt type must be 'positive' or 'negative', not {prompt_type!r}")
        if variations_delimiter not in ("comma", "space"):
            raise ValueError(f"{TITLE}: joining char must be 'comma' or 'space', "
                             f"not {variations_delimiter!r}")

        # 1. The prompts: every combination of the '|' parts of the chosen prompt.
        chosen = p.prompt if prompt_type == "positive" else p.negative_prompt
        original = chosen[0] if isinstance(chosen, list) else chosen
        positive = p.prompt[0] if isinstance(p.prompt, list) else p.prompt
        parts = original.split("|")
        prompts = matrix_prompts(parts, bool(put_at_start), ", " if variations_delimiter == "comma" else " ")
        log.info(f"Prompt matrix: {len(prompts)} images in {math.ceil(len(prompts) / p.batch_size)} batches")

        # 2. One job for all of them: one prompt and seed per image, no grid of the core's own.
        p.n_iter = math.ceil(len(prompts) / p.batch_size)
        p.do_not_save_grid = True
        if prompt_type == "positive":
            p.prompt = prompts
        else:
            p.negative_prompt = prompts
        p.all_prompts = p.all_negative_prompts = None  # made again from the prompt lists below
        p.all_seeds = [int(p.seed) + (i if different_seeds else 0) for i in range(len(prompts))]
        p.all_subseeds = [int(p.subseed) + i for i in range(len(prompts))]
        p.prompt_for_display = positive
        processed = process_images(p)

        # 3. The labelled grid first (2 ** (parts // 2) rows), when it is not too large.
        made = processed.images[:len(prompts)]
        if len(made) == len(prompts) and images.check_grid_size(made):
            grid = images.image_grid(made, p.batch_size, rows=1 << ((len(parts) - 1) // 2))
            grid = images.draw_prompt_matrix(grid, made[0].width, made[0].height, parts,
                                             int(margin_size or 0))
            processed.images.insert(0, grid)
            processed.index_of_first_image = 1
            processed.infotexts.insert(0, processed.infotexts[0])
        return processed
