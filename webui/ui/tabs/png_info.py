"""PNG Info tab: drop an image, read its generation parameters and other text chunks, send it on."""
from __future__ import annotations

import html

import gradio as gr
from PIL import Image

from modules.images.saving import read_image_info

TAB = "pnginfo"


def info_html(image_path: str | None) -> tuple[str, str]:
    """(HTML shown on the page, the parameters text) for an uploaded file; unreadable files say so."""
    if not image_path:
        return "", ""
    try:
        with Image.open(image_path) as image:
            infotext, other = read_image_info(image)
    except (OSError, SyntaxError, ValueError) as exc:
        return f"<div class='gen-error'>Could not read the image: {html.escape(str(exc))}</div>", ""
    blocks = []
    if infotext:
        body = "<br>".join(html.escape(line) for line in infotext.split("\n"))
        blocks.append(f"<div class='infotext-item'><p><b>parameters</b></p><p>{body}</p></div>")
    for key, value in other.items():
        blocks.append(f"<div class='infotext-item'><p><b>{html.escape(str(key))}</b></p>"
                      f"<p>{html.escape(str(value))}</p></div>")
    if not blocks:
        blocks.append("<div class='gen-note'>This image carries no generation parameters.</div>")
    return "".join(blocks), infotext or ""


def build(ctx, ui) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(variant="panel"):
            # A file path, not a decoded image: the text chunks live in the file, and a broken file must
            # reach our handler (which explains it) rather than fail inside the upload.
            image = gr.Image(label="Source", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                             elem_id="pnginfo_image", height=480)
        with gr.Column(variant="panel"):
            shown = gr.HTML(elem_id="pnginfo_html_info")
            parameters = gr.Textbox(visible=False, elem_id="pnginfo_generation_info")
            with gr.Row(elem_id="pnginfo_send_buttons"):
                buttons = {target: gr.Button(label, elem_id=f"pnginfo_send_to_{target}", size="sm", min_width=80)
                           for target, label in (("txt2img", "Send to txt2img"), ("img2img", "Send to img2img"),
                                                 ("inpaint", "Send to inpaint"), ("extras", "Send to extras"))}

    image.change(info_html, image, [shown, parameters], show_progress="hidden")
    for target, button in buttons.items():
        ui.add_send(button, target, _source, [image, parameters])


def _source(path, parameters):
    """(image, infotext) to send; the image is opened only for targets that take one."""
    if not path:
        raise ValueError("drop an image first")
    with Image.open(path) as image:
        image.load()
        return image.copy(), parameters or ""
