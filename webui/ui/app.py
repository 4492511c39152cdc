"""build_ui(ctx) -> gr.Blocks: the top bar and one tab per file in webui/ui/tabs, with A1111's element ids."""
from __future__ import annotations

import gradio as gr

from webui.ui import topbar
from webui.ui.tabs import placeholder, txt2img

BASE_CSS = """
#demo_notice { border: 1px solid #d97706; background: #fffbeb; color: #78350f; padding: 6px 10px;
               border-radius: 6px; }
.gen-error { color: #b91c1c; font-weight: 600; }
"""


def ui_css(ctx) -> str:
    """Our CSS plus the user's user.css from the data dir (as A1111 loads it)."""
    css = BASE_CSS
    if ctx.paths.user_css_file.exists():
        css += "\n" + ctx.paths.user_css_file.read_text(encoding="utf-8", errors="replace")
    return css


def build_ui(ctx) -> gr.Blocks:
    """The whole page. Tabs that later issues fill are present as slots so element ids are stable."""
    with gr.Blocks(title="Stable Diffusion", analytics_enabled=False) as blocks:
        topbar.build(ctx)
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("txt2img", id="txt2img", elem_id="tab_txt2img"):
                txt2img.build(ctx)
            for label, tab_id in (("img2img", "img2img"), ("Extras", "extras"), ("PNG Info", "pnginfo"),
                                  ("Train", "train"), ("Settings", "settings"), ("Extensions", "extensions")):
                with gr.Tab(label, id=tab_id, elem_id=f"tab_{tab_id}"):
                    placeholder.build(ctx, tab_id)
    return blocks
