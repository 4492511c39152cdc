"""The output panel of txt2img, img2img and extras: progress, gallery, the buttons under it (open folder,
save, zip, send to ...), generation info and the message line. Element ids as in A1111."""
from __future__ import annotations

import html
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
from PIL import Image

from modules.images.filenames import infotext_tokens
from modules.images.outputs import OutputDirs
from modules.images.saving import SaveOptions, save_image
from webui.ui.components.runner import SessionJobs, error_html, info_html, notes_html, session_key

SEND_LABELS = {"img2img": "Send to img2img", "inpaint": "Send to inpaint", "extras": "Send to extras",
               "txt2img": "Send to txt2img"}


@dataclass
class OutputPanel:
    tab: str
    progress: gr.HTML
    gallery: gr.Gallery
    info: gr.HTML
    log: gr.HTML
    state: gr.State
    download: gr.File
    preview: gr.HTML  # the live preview while a job runs (over the gallery)
    # a finished job's (gallery, progress, info, log, state) between the stream and show_result
    pending: gr.State
    send_buttons: dict[str, gr.Button] = field(default_factory=dict)

    @property
    def outputs(self) -> list:
        """The order runner.final_outputs gives a finished job in."""
        return [self.gallery, self.progress, self.info, self.log, self.state]

    @property
    def stream_outputs(self) -> list:
        """What runner.stream_job's updates go to: progress, preview, and the result once at the end."""
        return [self.progress, self.preview, self.pending]


def show_result(pending):
    """The follow-up of a job's stream: the finished job into the panel, the preview gone, the pending slot
    emptied."""
    if pending is None:  # the stream ended without a result (it failed or the page went away)
        return (*[gr.skip()] * 5, "", None)
    return (*pending, "", None)


def wire_result(stream_event, panel: OutputPanel):
    """Run show_result after `stream_event` (a job streamed into panel.stream_outputs); returns that event."""
    return stream_event.then(show_result, panel.pending, [*panel.outputs, panel.preview, panel.pending],
                             queue=False, show_progress="hidden")


def empty_state() -> dict:
    return {"images": [], "infotexts": [], "paths": [], "selected": 0}


def selected(state) -> tuple[Image.Image | None, str]:
    """(image, infotext) of the selected gallery item, or (None, "") with nothing generated yet."""
    state = state or {}
    images = state.get("images") or []
    if not images:
        return None, ""
    index = min(max(int(state.get("selected") or 0), 0), len(images) - 1)
    texts = state.get("infotexts") or []
    return images[index], texts[index] if index < len(texts) else ""


def build(ctx, ui, tab: str, state: gr.State | None = None, *, sends=("img2img", "inpaint", "extras"), folder_kind: str | None = None
          ) -> OutputPanel:
    with gr.Column(elem_id=f"{tab}_results", variant="panel"):
        progress = gr.HTML("", elem_id=f"{tab}_progress", elem_classes=["progress-panel"])
        preview = gr.HTML("", elem_id=f"{tab}_live_preview", elem_classes=["live-preview-panel"],
                          container=False, padding=False)
        gallery = gr.Gallery(label="Output", show_label=False, elem_id=f"{tab}_gallery", columns=4,
                             height=480, object_fit="contain", preview=True, format="png", interactive=False)
        with gr.Row(elem_id=f"image_buttons_{tab}", elem_classes=["image-buttons"]):
            folder = gr.Button("Folder", elem_id=f"{tab}_open_folder", size="sm", min_width=60)
            save = gr.Button("Save", elem_id=f"save_{tab}", size="sm", min_width=60)
            zip_button = gr.Button("Zip", elem_id=f"save_zip_{tab}", size="sm", min_width=60)
            buttons = {target: gr.Button(SEND_LABELS[target], elem_id=f"{tab}_send_to_{target}", size="sm",
                                         min_width=100) for target in sends}
        download = gr.File(None, file_count="multiple", interactive=False, show_label=False, visible=False,
                           elem_id=f"download_files_{tab}")
        info = gr.HTML(elem_id=f"html_info_{tab}", elem_classes=["infotext-panel"])
        log = gr.HTML(elem_id=f"html_log_{tab}")
        state = state if state is not None else gr.State(empty_state())
        pending = gr.State(None)
    panel = OutputPanel(tab, progress, gallery, info, log, state, download, preview, pending, buttons)

    def on_select(current, evt: gr.SelectData):
        # The info line follows the picked image, as in A1111 (the grid shows the first image's info).
        current = dict(current or empty_state())
        current["selected"] = int(evt.index or 0)
        return current, info_html(selected(current)[1])

    gallery.select(on_select, state, [state, info], show_progress="hidden")
    kind = folder_kind or tab
    folder.click(lambda: open_folder(ctx, _folders(ctx).folder(kind)), None, log,
                 show_progress="hidden")
    save.click(lambda s: save_selected(ctx, s), state, [download, log], show_progress="hidden")
    zip_button.click(lambda s: zip_all(s), state, [download, log], show_progress="hidden")
    for target, button in buttons.items():
        ui.add_send(button, target, selected, [state])
    return panel


def wire_stop(panel_tab: str, jobs: SessionJobs, interrupt: gr.Button, skip: gr.Button) -> None:
    """Interrupt and Skip act on this session's job; they run outside the queue so they never wait."""

    def on_interrupt(request: gr.Request):
        jobs.interrupt(session_key(request, panel_tab))

    def on_skip(request: gr.Request):
        jobs.skip(session_key(request, panel_tab))

    interrupt.click(on_interrupt, None, None, queue=False, show_progress="hidden")
    skip.click(on_skip, None, None, queue=False, show_progress="hidden")


def open_folder(ctx, folder: Path) -> str:
    """Open the outputs folder in the file manager of the machine running the server (local use)."""
    folder.mkdir(parents=True, exist_ok=True)
    if getattr(ctx.flags, "listen", False) or getattr(ctx.flags, "server_host", "127.0.0.1") not in (
            "127.0.0.1", "localhost"):
        return notes_html([f"Images are in {html.escape(str(folder))} on the server."])
    opener = {"win32": None, "darwin": ["open"]}.get(sys.platform, ["xdg-open"])
    try:
        if opener is None:
            os.startfile(folder)  # type: ignore[attr-defined]  # Windows only
        else:
            subprocess.Popen([*opener, str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return notes_html([f"Images are in {html.escape(str(folder))} (no file manager could be opened)."])
    return notes_html([f"Opened {html.escape(str(folder))}"])


def save_selected(ctx, state) -> tuple:
    """Save the selected image with its parameters in outdir_save (log/images: A1111's "Save") and offer it."""
    image, infotext = selected(state)
    if image is None:
        return gr.update(visible=False), error_html("Nothing to save yet: generate an image first.")
    try:
        path = save_image(image, _folders(ctx).folder("save"), SaveOptions.for_save_button(ctx.settings.as_dict()),
                          infotext=infotext, tokens=infotext_tokens(infotext))
    except (OSError, ValueError) as exc:
        return gr.update(visible=False), error_html(f"Could not save: {exc}")
    # Offered from a temp copy: Gradio serves downloads only from the temp dir, cwd or allowed paths.
    offered = Path(tempfile.mkdtemp(prefix="webui-save-")) / path.name
    shutil.copyfile(path, offered)
    return gr.update(value=[str(offered)], visible=True), notes_html([f"Saved {html.escape(str(path))}"])


def _folders(ctx) -> OutputDirs:
    """The outdir_* settings as they are now (a changed setting applies at the next click)."""
    return OutputDirs.from_settings(ctx.settings.as_dict(), ctx.paths.data_dir)


def zip_all(state) -> tuple:
    """All images of the last result in one zip to download (saved files when there are, else PNGs)."""
    state = state or {}
    images = state.get("images") or []
    if not images:
        return gr.update(visible=False), error_html("Nothing to zip yet: generate an image first.")
    paths = state.get("paths") or []
    target = Path(tempfile.mkdtemp(prefix="webui-zip-")) / f"images-{time.strftime('%Y%m%d-%H%M%S')}.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for index, image in enumerate(images):
            path = paths[index] if index < len(paths) else ""
            if path and Path(path).exists():
                archive.write(path, Path(path).name)
                continue
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            archive.writestr(f"{index:05}.png", buf.getvalue())
    return gr.update(value=[str(target)], visible=True), notes_html([f"Zipped {len(images)} images"])
