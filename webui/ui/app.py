"""build_ui(ctx) -> gr.Blocks: the top bar and one tab per file in webui/ui/tabs, with A1111's element ids.

The page's CSS (ours + the user's user.css) and JS (theme, keyboard shortcuts, tabs rendered at load) go to
mount_gradio_app by webui/server.py: Gradio 6 takes them there, not on gr.Blocks.
"""
from __future__ import annotations

import contextlib

import gradio as gr

from webui.a1111.component_hooks import ComponentAnnouncer, announcing
from webui.a1111.javascript import extension_css, page_head
from webui.ui import topbar
from webui.ui.components import extra_networks
from webui.ui.extension_tabs import collect_a1111_tabs, render_extension_tabs
from webui.ui.page_js import page_js
from webui.ui.registry import UiBuild
from webui.ui.tabs import extensions, extras, img2img, png_info, settings, train, txt2img

# (label, id, module): the main tabs in A1111's order; element id is "tab_<id>".
TABS = (
    ("txt2img", "txt2img", txt2img),
    ("img2img", "img2img", img2img),
    ("Extras", "extras", extras),
    ("PNG Info", "pnginfo", png_info),
    ("Train", "train", train),
    ("Settings", "settings", settings),
    ("Extensions", "extensions", extensions),
)

BASE_CSS = """
#demo_notice { border: 1px solid #d97706; background: #fffbeb; color: #78350f; padding: 6px 10px;
               border-radius: 6px; }
.dark #demo_notice { background: #3b2a0a; color: #fde68a; }
.gen-error { color: #b91c1c; font-weight: 600; padding: 4px 0; }
.dark .gen-error { color: #f87171; }
.gen-note { opacity: 0.8; font-size: 0.9em; padding: 2px 0; }
#quicksettings { align-items: flex-end; gap: 8px; }
.token-counter { text-align: right; font-size: 0.8em; opacity: 0.7; padding-right: 10px; min-height: 0;
                  margin-top: -10px !important; margin-bottom: -6px !important; }
.progress-panel:empty { display: none; }
/* The live preview (its own streamed output, runner.py) covers the gallery below it while a job runs, as
   A1111's preview does; the result replaces it. Hidden while empty, so it adds no gap. */
.live-preview-panel { position: relative; z-index: 20; height: 0; min-height: 0 !important;
                      overflow: visible !important; }
.live-preview-panel:not(:has(img)) { display: none; }
.live-preview-panel .live-preview { position: absolute; top: 0; left: 0; right: 0; height: 480px;
                                    display: flex; align-items: center; justify-content: center;
                                    background: var(--block-background-fill); border-radius: 4px; }
.live-preview-panel .live-preview img { width: 100%; height: 100%; object-fit: contain; }
.progress-bar { position: relative; height: 18px; border-radius: 4px; background: var(--neutral-200);
                overflow: hidden; }
.dark .progress-bar { background: var(--neutral-700); }
.progress-fill { height: 100%; background: var(--color-accent); }  /* no transition: 12 frames a message */
.progress-label { position: absolute; inset: 0; text-align: center; font-size: 12px; line-height: 18px; }
.progress-text { font-size: 0.85em; opacity: 0.85; padding: 2px 0; }
.image-buttons button { flex: 1 1 auto; }
.infotext { font-size: 0.9em; word-break: break-word; }
.infotext-item p { margin: 2px 0; word-break: break-word; }
.defaults-table td, .defaults-table th { padding: 2px 8px; text-align: left; }
"""


def ui_css(ctx) -> str:
    """Our CSS, the extensions' style.css files, then the user's user.css from the data dir (as A1111)."""
    css = BASE_CSS + "\n" + extra_networks.page_css()
    system = getattr(ctx, "extensions", None)
    if system is not None:
        css += "\n" + extension_css(system.registry.css())
    if ctx.paths.user_css_file.exists():
        css += "\n" + ctx.paths.user_css_file.read_text(encoding="utf-8", errors="replace")
    return css


def ui_js(ctx, blocks: gr.Blocks) -> str:
    """Page-load JS: the --theme flag, the keyboard shortcuts, every tab rendered at load (page_js.py)."""
    return page_js(getattr(ctx.flags, "theme", None), blocks)


def build_ui(ctx) -> gr.Blocks:
    """The whole page. Tabs that later issues fill are present as slots so element ids are stable;
    extensions' tabs go before Settings, their sections into txt2img/img2img (as in A1111)."""
    ui = UiBuild(ctx)
    compat = getattr(getattr(ctx, "extensions", None), "compat", None)
    announcer = ComponentAnnouncer(compat) if compat is not None else None
    with announcing(announcer):
        extension_tabs = collect_a1111_tabs(compat)  # A1111 tabs build their own gr.Blocks first
        with gr.Blocks(title="Stable Diffusion", analytics_enabled=False) as blocks:
            topbar.build(ctx, ui)
            # "wrap": every tab button stays in the page (a narrow window would hide some in a menu).
            with gr.Tabs(elem_id="tabs", overflow_behavior="wrap") as ui.tabs:
                for label, tab_id, module in TABS:
                    if tab_id == "settings":
                        render_extension_tabs(ctx, extension_tabs)
                    with gr.Tab(label, id=tab_id, elem_id=f"tab_{tab_id}"):
                        with announcer.building_tab(tab_id) if announcer else contextlib.nullcontext():
                            module.build(ctx, ui)
            ui.wire_sends()
            ui.on_load(ui.defaults.current_values, list(ui.defaults.widgets.values()), stamp=ui.defaults.stamp)
            ui.wire_load(blocks)
    return blocks


def extension_head(ctx) -> str:
    """<script> tags for the page head: A1111's JS globals and every extension's javascript/*.js."""
    system = getattr(ctx, "extensions", None)
    head = page_head(ctx.settings, system.registry.javascript() if system is not None else [])
    return head + "\n<script data-source=\"extra-networks\">\n" + extra_networks.page_script() + "\n</script>"
