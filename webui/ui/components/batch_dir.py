"""img2img "Batch": every image of an input folder through img2img (or inpaint, with a mask folder), saved
to an output folder under its own name, optionally with the prompt and seed from each image's PNG info."""
from __future__ import annotations

import html
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
import gradio as gr
from PIL import Image

from modules.generation.service import submit_generation
from modules.images.saving import SaveOptions, read_image_info, save_image
from modules.types import UserInputError
from webui.ui import forms
from webui.ui.components.runner import (SessionJobs, error_html, job_progress, message_outputs, notes_html,
                                        progress_update, result_update)
from webui.ui.components.server_folders import server_folder

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# What "PNG info" takes from each image, as A1111's batch offers by default.
PNG_INFO_FIELDS = ("prompt", "negative_prompt", "seed", "cfg_scale", "steps", "sampler_name", "scheduler")
MAX_SHOWN = 32


def build() -> dict:
    gr.Markdown("Process every image in a folder on the server (a relative path is inside the data folder; "
                "with --listen only folders inside it are allowed). Leave the output folder empty to save to "
                "the usual outputs folder. A mask folder holds masks with the images' file names.")
    input_dir = gr.Textbox(label="Input directory", elem_id="img2img_batch_input_dir")
    output_dir = gr.Textbox(label="Output directory", elem_id="img2img_batch_output_dir")
    mask_dir = gr.Textbox(label="Inpaint batch mask directory (required for inpaint batch processing only)",
                          elem_id="img2img_batch_inpaint_mask_dir")
    use_png_info = gr.Checkbox(label="Append PNG info (prompt, seed, steps, sampler) of each image",
                               elem_id="img2img_batch_use_png_info")
    return {"batch_input_dir": input_dir, "batch_output_dir": output_dir, "batch_mask_dir": mask_dir,
            "batch_use_png_info": use_png_info}


@dataclass(frozen=True)
class BatchFolders:
    """The form's folders, absolute; output None = the usual outputs folder, mask None = no masks."""

    input: Path
    output: Path | None = None
    mask: Path | None = None


def batch_folders(ctx, values: dict) -> BatchFolders:
    """The folders the form names; raises UserInputError for an empty input folder or, with --listen, for a
    folder outside the data dir (server_folders.py)."""
    text = (values.get("batch_input_dir") or "").strip()
    if not text:
        raise UserInputError("enter an input directory", field="batch_input_dir")

    def optional(key: str) -> Path | None:
        named = (values.get(key) or "").strip()
        return server_folder(ctx, named, key) if named else None

    return BatchFolders(server_folder(ctx, text, "batch_input_dir"), optional("batch_output_dir"),
                        optional("batch_mask_dir"))


def list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise UserInputError(f"{folder} is not a folder", field="batch_input_dir")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def file_values(values: dict, path: Path, mask_dir: Path | None = None) -> dict:
    """The form values for one file: its image (and its mask from `mask_dir`), and its PNG info when asked."""
    out = dict(values, img2img_mode="img2img", init_img=str(path))
    if mask_dir is not None:
        masks = [p for p in mask_dir.glob(path.stem + ".*") if p.suffix.lower() in IMAGE_SUFFIXES]
        if masks:
            out.update(img2img_mode="inpaint_upload", init_img_inpaint=str(path),
                       init_mask_inpaint=str(masks[0]))
    if values.get("batch_use_png_info"):
        with Image.open(path) as image:
            infotext, _ = read_image_info(image)
        parsed = forms.values_from_infotext(infotext or "")
        out.update({k: parsed[k] for k in PNG_INFO_FIELDS if k in parsed})
    return out


async def run(ctx, jobs: SessionJobs, key: str, values: dict, make_request: Callable[[dict], object]
              ) -> AsyncIterator[tuple]:
    """Yields runner.stream_job's updates (progress, then the result), one job per file.

    Reading folders and files and saving results block, so they run in a thread; waiting does not."""
    try:
        folders = await anyio.to_thread.run_sync(batch_folders, ctx, values)
        files = await anyio.to_thread.run_sync(list_images, folders.input)
    except UserInputError as exc:
        yield result_update(message_outputs(error_html(str(exc))))
        return
    if not files:
        yield result_update(message_outputs(error_html(f"no images in {folders.input}")))
        return
    out_dir = folders.output
    options = replace(SaveOptions.from_settings(ctx.settings.as_dict()), directory_pattern="",
                      filename_pattern="", add_number=False)
    shown, texts, problems = [], [], []
    for index, path in enumerate(files):
        try:
            job = await anyio.to_thread.run_sync(_submit, ctx, values, path, folders.mask, make_request,
                                                 out_dir is not None)
        except (UserInputError, OSError, ValueError) as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        jobs.remember(key, job)
        counter = f"<div class='progress-text'>File {index + 1}/{len(files)}</div>"
        try:
            async for progress in job_progress(job, counter, previews=False):
                yield progress_update(progress)
        finally:
            jobs.forget(key, job)
        if job.error:
            problems.append(f"{path.name}: {job.error}")
            continue
        if job.result is None or job.state in ("interrupted", "cancelled"):
            problems.append("Interrupted.")
            break
        for i, image in enumerate(job.result.images):
            info = job.result.infotexts[i] if i < len(job.result.infotexts) else ""
            if out_dir is not None:
                name = path.stem if i == 0 else f"{path.stem}-{i}"
                await anyio.to_thread.run_sync(lambda im=image, text=info, n=name: save_image(
                    im, out_dir, options, infotext=text, basename=n))
            if len(shown) < MAX_SHOWN:
                shown.append(image)
                texts.append(info)
    state = {"images": shown, "infotexts": texts, "paths": [], "selected": 0}
    notes = [f"Processed {len(files) - len(problems)} of {len(files)} images"
             + (f" into {html.escape(str(out_dir))}" if out_dir is not None else "")]
    notes += [html.escape(p) for p in problems]
    yield result_update((shown, "", gr.skip(), notes_html(notes), state if shown else gr.skip()))


def _submit(ctx, values: dict, path: Path, mask_dir: Path | None, make_request: Callable[[dict], object],
            own_output: bool):
    request = make_request(file_values(values, path, mask_dir))
    if own_output:
        request = request.with_changes(save_images=False)
    return submit_generation(ctx, request)
