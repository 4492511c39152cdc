"""img2img's Interrogate buttons (A1111 ids `interrogate` and `deepbooru`) and a tagger dropdown: they fill
the prompt from the image of the img2img sub-tab in use, with a provider extensions registered as 'tagger'
(api.register_tagger; the protocol is in docs/extensions.md). Shown only when a tagger is registered."""
from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image

from modules.extensions.hooks import describe_exception

log = logging.getLogger("webui.ui")
# img2img mode -> the image field it interrogates (as forms.py reads them)
MODE_IMAGE = {"img2img": "init_img", "sketch": "sketch", "inpaint": "init_img_with_mask",
              "inpaint_sketch": "inpaint_color_sketch", "inpaint_upload": "init_img_inpaint"}


@dataclass
class InterrogateRow:
    clip: gr.Button
    deepbooru: gr.Button
    tagger: gr.Dropdown
    run: gr.Button
    message: gr.HTML


def tagger_models(registry) -> list[str]:
    """Every model the registered taggers offer, in registration order (looked up now, not at start-up)."""
    names: list[str] = []
    for named in registry.providers("tagger"):
        try:
            names += [m for m in named.provider.models() if m not in names]
        except Exception as exc:  # one broken tagger must not take the img2img tab down
            log.error("Extension %s: tagger %s: %s", named.extension, named.name, describe_exception(exc))
    return names


def build(ctx, tab: str) -> InterrogateRow | None:
    system = getattr(ctx, "extensions", None)
    if system is None or not system.registry.providers("tagger"):
        return None
    models = tagger_models(system.registry)
    with gr.Row(elem_id=f"{tab}_interrogate_row"):
        clip = gr.Button("Interrogate CLIP", elem_id="interrogate", size="sm", min_width=60)
        deepbooru = gr.Button("Interrogate DeepBooru", elem_id="deepbooru", size="sm", min_width=60)
        tagger = gr.Dropdown(models, value=models[0] if models else None, label="Tagger",
                             allow_custom_value=True,
                             elem_id=f"{tab}_interrogate_model", scale=2)
        run = gr.Button("Interrogate", elem_id=f"{tab}_interrogate_tagger", size="sm", min_width=60)
    message = gr.HTML(elem_id=f"{tab}_interrogate_message")
    return InterrogateRow(clip, deepbooru, tagger, run, message)


def wire(ctx, row: InterrogateRow | None, prompt, mode, images: dict) -> None:
    """Clicks read the mode and every image field, and write (prompt, message)."""
    if row is None:
        return
    registry = ctx.extensions.registry
    fields = list(MODE_IMAGE.values())
    inputs = [prompt, mode, *[images[f] for f in fields]]

    def run(model: str | None, current_prompt: str, mode_value: str, *values):
        image = to_pil(dict(zip(fields, values)).get(MODE_IMAGE.get(mode_value, "init_img")))
        if image is None:
            return current_prompt, "<div class='gen-error'>Put an image in img2img first.</div>"
        found = find(registry, model or "")
        if found is None:
            return current_prompt, f"<div class='gen-error'>No tagger offers {html.escape(str(model))}.</div>"
        named, name = found
        try:
            return named.provider.caption(image, name), ""
        except Exception as exc:  # noqa: BLE001 - shown to the user verbatim; the prompt stays as it was
            return current_prompt, f"<div class='gen-error'>{html.escape(str(exc))}</div>"

    row.clip.click(lambda *a: run("clip", *a), inputs, [prompt, row.message])
    row.deepbooru.click(lambda *a: run("deepdanbooru", *a), inputs, [prompt, row.message])
    row.run.click(run, [row.tagger, *inputs], [prompt, row.message])


def find(registry, model: str):
    """(provider entry, model name) of the first tagger offering `model`; a provider's own name or alias
    stands for its only model (clip, deepdanbooru)."""
    for named in registry.providers("tagger"):
        try:
            offered = named.provider.models()
        except Exception:  # noqa: BLE001 - reported when the dropdown was built
            continue
        for name in offered:
            if name.lower() == model.lower():
                return named, name
    named = registry.provider("tagger", model)
    if named is not None:
        offered = named.provider.models()
        return (named, offered[0]) if len(offered) == 1 else None
    return None


def to_pil(value) -> Image.Image | None:
    """An image widget's value (file path, editor dict, PIL image) as a PIL image."""
    if value is None:
        return None
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        return to_pil(value.get("composite") or value.get("background"))
    if isinstance(value, (str, Path)) and str(value):
        with Image.open(value) as opened:
            opened.load()
            return opened.copy()
    return None
