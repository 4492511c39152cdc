"""img2img "Batch": every image of an input folder through img2img (or inpaint, with a mask folder), saved
to an output folder under its own name, optionally with the prompt and seed from each image's PNG info."""
from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import gradio as gr
from PIL import Image

from modules.generation.service import submit_generation
from modules.images.saving import SaveOptions, read_image_info, save_image
from modules.types import UserInputError
from webui.ui import forms
from webui.ui.components.runner import POLL_SECONDS, SessionJobs, error_html, notes_html, progress_html

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# What "PNG info" takes from each image, as A1111's batch offers by default.
PNG_INFO_FIELDS = ("prompt", "negative_prompt", "seed", "cfg_scale", "steps", "sampler_name", "scheduler")
MAX_SHOWN = 32


def build() -> dict:
    gr.Markdown("Process every image in a folder on the server. Leave the output folder empty to save to "
                "the usual outputs folder. A mask folder holds masks with the images' file names.")
    input_dir = gr.Textbox(label="Input directory", elem_id="img2img_batch_input_dir")
    output_dir = gr.Textbox(label="Output directory", elem_id="img2img_batch_output_dir")
    mask_dir = gr.Textbox(label="Inpaint batch mask directory (required for inpaint batch processing only)",
                          elem_id="img2img_batch_inpaint_mask_dir")
    use_png_info = gr.Checkbox(label="Append PNG info (prompt, seed, steps, sampler) of each image",
                               elem_id="img2img_batch_use_png_info")
    return {"batch_input_dir": input_dir, "batch_output_dir": output_dir, "batch_mask_dir": mask_dir,
            "batch_use_png_info": use_png_info}


def list_images(folder: str) -> list[Path]:
    root = Path(folder or "").expanduser()
    if not folder or not root.is_dir():
        raise UserInputError(f"{folder or '(empty)'} is not a folder", field="batch_input_dir")
    return sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def file_values(values: dict, path: Path) -> dict:
    """The form values for one file: its image (and mask), and its PNG info when asked for."""
    out = dict(values, img2img_mode="img2img", init_img=str(path))
    mask_dir = (values.get("batch_mask_dir") or "").strip()
    if mask_dir:
        masks = [p for p in Path(mask_dir).expanduser().glob(path.stem + ".*") if p.suffix.lower() in IMAGE_SUFFIXES]
        if masks:
            out.update(img2img_mode="inpaint_upload", init_img_inpaint=str(path), init_mask_inpaint=str(masks[0]))
    if values.get("batch_use_png_info"):
        with Image.open(path) as image:
            infotext, _ = read_image_info(image)
        parsed = forms.values_from_infotext(infotext or "")
        out.update({k: parsed[k] for k in PNG_INFO_FIELDS if k in parsed})
    return out


def run(ctx, jobs: SessionJobs, key: str, values: dict, make_request: Callable[[dict], object]) -> Iterator[tuple]:
    """Yields (gallery, progress, info, log, state) like runner.stream_job, one job per file."""
    skip = gr.skip()
    try:
        files = list_images(values.get("batch_input_dir"))
    except UserInputError as exc:
        yield skip, "", skip, error_html(str(exc)), skip
        return
    if not files:
        yield skip, "", skip, error_html(f"no images in {values.get('batch_input_dir')}"), skip
        return
    out_dir = (values.get("batch_output_dir") or "").strip()
    options = replace(SaveOptions.from_settings(ctx.settings.as_dict()), directory_pattern="",
                      filename_pattern="", add_number=False)
    shown, texts, problems = [], [], []
    for index, path in enumerate(files):
        try:
            request = make_request(file_values(values, path))
            if out_dir:
                request = request.with_changes(save_images=False)
            job = submit_generation(ctx, request)
        except (UserInputError, OSError, ValueError) as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        jobs.remember(key, job)
        while not job.wait(POLL_SECONDS):
            text = progress_html(job.snapshot(), job.position)
            yield skip, f"<div class='progress-text'>File {index + 1}/{len(files)}</div>{text}", skip, skip, skip
        jobs.forget(key, job)
        if job.error:
            problems.append(f"{path.name}: {job.error}")
            continue
        if job.result is None or job.state in ("interrupted", "cancelled"):
            problems.append("Interrupted.")
            break
        for i, image in enumerate(job.result.images):
            info = job.result.infotexts[i] if i < len(job.result.infotexts) else ""
            if out_dir:
                save_image(image, out_dir, options, infotext=info, basename=path.stem if i == 0 else
                           f"{path.stem}-{i}")
            if len(shown) < MAX_SHOWN:
                shown.append(image)
                texts.append(info)
    state = {"images": shown, "infotexts": texts, "paths": [], "selected": 0}
    notes = [f"Processed {len(files) - len(problems)} of {len(files)} images"
             + (f" into {html.escape(out_dir)}" if out_dir else "")]
    notes += [html.escape(p) for p in problems]
    yield shown, "", skip, notes_html(notes), state if shown else skip

