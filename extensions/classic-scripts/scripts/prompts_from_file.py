"""Prompts from file or textbox: one generation per line. A line is a prompt, or A1111's command-line
form `--prompt "a cat" --steps 7 --negative_prompt "blurry"` setting any of the options below for that
line. Lines are read before anything generates, and a bad option fails with the line it is on.

Written for the A1111 adapter with A1111's names only; `script_args` in A1111's ui() order:
checkbox_iterate, checkbox_iterate_batch, prompt_position ("start"/"end"), prompt_txt, make_combined.
"""
from __future__ import annotations

import copy
import random
import shlex
from pathlib import Path

import gradio as gr

from modules import images, scripts, sd_models, sd_samplers
from modules.processing import Processed, process_images
from modules.shared import state

TITLE = "Prompts from file or textbox"


def _text(value: str) -> str:
    return value


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expects a whole number, not {value!r}") from None


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"expects a number, not {value!r}") from None


def _bool(value: str) -> bool:
    return value.strip().lower() == "true"


def _styles(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def _sampler(value: str) -> str:
    name = sd_samplers.samplers_map.get(value.lower())
    if name is None:
        raise ValueError(f"unknown sampler {value!r}")
    return name


def _checkpoint(value: str) -> str:
    info = sd_models.get_closet_checkpoint_match(value)
    if info is None:
        raise ValueError(f"unknown checkpoint {value!r}")
    return info.name


def _face_restoration(value: str) -> bool:
    if _bool(value):
        raise ValueError("face restoration is not available in this app")
    return False


# A1111's options, each with how its value is read.
PROMPT_TAGS = {
    "sd_model": _checkpoint,
    "outpath_samples": _text,
    "outpath_grids": _text,
    "prompt_for_display": _text,
    "prompt": _text,
    "negative_prompt": _text,
    "styles": _styles,
    "seed": _int,
    "subseed_strength": _float,
    "subseed": _int,
    "seed_resize_from_h": _int,
    "seed_resize_from_w": _int,
    "sampler_index": _int,
    "sampler_name": _sampler,
    "batch_size": _int,
    "n_iter": _int,
    "steps": _int,
    "cfg_scale": _float,
    "width": _int,
    "height": _int,
    "restore_faces": _face_restoration,
    "tiling": _bool,
    "do_not_save_samples": _bool,
    "do_not_save_grid": _bool,
}
# Their words may be unquoted: everything up to the next --option belongs to them (A1111).
MULTI_WORD = ("prompt", "negative_prompt")


def parse_options(line: str) -> dict:
    """`--name value ...` -> {name: value}; ValueError says what is wrong (the caller adds the line)."""
    try:
        words = shlex.split(line)
    except ValueError as exc:  # "No closing quotation"
        raise ValueError(str(exc)) from None
    options, pos = {}, 0
    while pos < len(words):
        word = words[pos]
        if not word.startswith("--"):
            raise ValueError(f"{word!r} should be an option starting with --")
        tag = word[2:]
        read = PROMPT_TAGS.get(tag)
        if read is None:
            raise ValueError(f"unknown option {word}; known: --{', --'.join(PROMPT_TAGS)}")
        if pos + 1 >= len(words):
            raise ValueError(f"{word} needs a value")
        pos += 1
        if tag in MULTI_WORD:
            taken = [words[pos]]
            pos += 1
            while pos < len(words) and not words[pos].startswith("--"):
                taken.append(words[pos])
                pos += 1
            options[tag] = " ".join(taken)
            continue
        try:
            options[tag] = read(words[pos])
        except ValueError as exc:
            raise ValueError(f"{word} {exc}") from None
        pos += 1
    return options


def parse_lines(text: str) -> list[dict]:
    """One dict of options per non-empty line; a line that starts with -- is options, any other a prompt."""
    jobs = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("--"):
            jobs.append({"prompt": line})
            continue
        try:
            jobs.append(parse_options(line))
        except ValueError as exc:
            shown = line if len(line) <= 80 else line[:77] + "..."
            raise ValueError(f"{TITLE}: line {number} ({shown!r}): {exc}") from None
    return jobs


def load_prompt_file(file):
    """An uploaded file's lines into the textbox (the upload itself is cleared)."""
    if file is None:
        return None, gr.update()
    data = file if isinstance(file, bytes) else Path(file).read_bytes()
    lines = [x.strip() for x in data.decode("utf8", errors="ignore").split("\n")]
    return None, gr.update(value="\n".join(lines), lines=7)


class Script(scripts.Script):
    def title(self):
        return TITLE

    def ui(self, is_img2img):
        checkbox_iterate = gr.Checkbox(label="Iterate seed every line", value=False,
                                       elem_id=self.elem_id("checkbox_iterate"))
        checkbox_iterate_batch = gr.Checkbox(label="Use same random seed for all lines", value=False,
                                             elem_id=self.elem_id("checkbox_iterate_batch"))
        prompt_position = gr.Radio(choices=["start", "end"], label="Insert prompts at the", value="start",
                                   elem_id=self.elem_id("prompt_position"))
        make_combined = gr.Checkbox(label="Make a combined image containing all outputs (if more than one)",
                                    value=False, elem_id=self.elem_id("make_combined"))
        prompt_txt = gr.Textbox(label="List of prompt inputs", lines=2, elem_id=self.elem_id("prompt_txt"))
        file = gr.File(label="Upload prompt inputs", type="binary", elem_id=self.elem_id("file"))
        file.upload(fn=load_prompt_file, inputs=[file], outputs=[file, prompt_txt], show_progress="hidden")
        prompt_txt.change(lambda text: gr.update(lines=7 if "\n" in (text or "") else 2), inputs=[prompt_txt],
                          outputs=[prompt_txt], show_progress="hidden")
        return [checkbox_iterate, checkbox_iterate_batch, prompt_position, prompt_txt, make_combined]

    def run(self, p, checkbox_iterate=False, checkbox_iterate_batch=False, prompt_position="start",
            prompt_txt="", make_combined=False, *_newer_args):
        # 1. Every line read first: a mistake on line 9 fails before line 1 generates.
        jobs = parse_lines(prompt_txt)
        p.do_not_save_grid = True
        if (checkbox_iterate or checkbox_iterate_batch) and int(p.seed) == -1:
            p.seed = int(random.randrange(4294967294))
        state.job_count = sum(int(job.get("n_iter", p.n_iter)) for job in jobs)

        # 2. One generation per line, on a copy of p with the line's options.
        results, prompts, negatives, seeds, infotexts = [], [], [], [], []
        for number, job in enumerate(jobs, start=1):
            if state.interrupted:
                break
            state.job = f"{number} out of {len(jobs)}"
            line_p = copy.copy(p)
            line_p.styles = list(p.styles or [])
            line_p.override_settings = dict(p.override_settings or {})
            line_p.all_prompts = line_p.all_negative_prompts = line_p.all_seeds = line_p.all_subseeds = None
            for key, value in job.items():
                if key == "sd_model":
                    line_p.override_settings["sd_model_checkpoint"] = value
                else:
                    setattr(line_p, key, value)
            # The main prompt box is kept: the line's prompt goes before or after it.
            for key in ("prompt", "negative_prompt"):
                if job.get(key) and getattr(p, key):
                    main = getattr(p, key)
                    joined = f"{job[key]} {main}" if prompt_position == "start" else f"{main} {job[key]}"
                    setattr(line_p, key, joined)
            processed = process_images(line_p)
            results += processed.images
            prompts += processed.all_prompts
            negatives += processed.all_negative_prompts
            seeds += processed.all_seeds
            infotexts += processed.infotexts
            if checkbox_iterate:
                p.seed = int(p.seed) + int(p.batch_size) * int(p.n_iter)

        # 3. Optionally every image on one grid, first.
        first = 0
        if make_combined and len(results) > 1:
            results.insert(0, images.image_grid(results, batch_size=1, rows=None).convert("RGB"))
            infotexts.insert(0, "\n".join(infotexts))
            first = 1
        return Processed(p, results, p.seed, "", all_prompts=prompts, all_negative_prompts=negatives,
                         all_seeds=seeds, infotexts=infotexts, index_of_first_image=first)
