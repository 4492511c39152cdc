"""Building A1111 Script UIs: each script's `ui(is_img2img)` components, their defaults (what the API
uses when a client sends fewer args) and /sdapi/v1/script-info's description of them.
"""
from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from modules.a1111.scripts import LoadedScript, ScriptArgSpec
from modules.extensions.hooks import describe_exception

log = logging.getLogger("webui.a1111")


def build_script_ui(compat, loaded: LoadedScript, is_img2img: bool) -> list[Any]:
    """Call the script's ui() (its extension's errors contained); records defaults and arg specs."""
    try:
        with compat.running(loaded.extension):
            components = loaded.script.ui(is_img2img)
    except Exception as exc:
        compat.report(loaded.extension, f"{loaded.title}.ui: {describe_exception(exc)}")
        components = []
    if components is None:
        components = []
    if isinstance(components, dict):  # some scripts return {name: component}
        components = list(components.values())
    components = [c for c in list(components) if isinstance(c, gr.blocks.Block)]
    loaded.defaults = [getattr(c, "value", None) for c in components]
    loaded.arg_specs = [arg_spec(c) for c in components]
    loaded.ui_built = True
    loaded.script.controls = components
    # A1111's infotext_fields: (component, "Label") pairs that pasting an infotext fills.
    from webui.ui.components.extension_sections import mark_paste_label

    for entry in getattr(loaded.script, "infotext_fields", None) or ():
        if isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[1], str) \
                and isinstance(entry[0], gr.blocks.Block):
            mark_paste_label(entry[0], entry[1])
    return components


def arg_spec(component) -> ScriptArgSpec:
    choices = getattr(component, "choices", None)
    if choices:
        choices = [c[1] if isinstance(c, (tuple, list)) and len(c) == 2 else c for c in choices]
    return ScriptArgSpec(label=getattr(component, "label", None), value=getattr(component, "value", None),
                         minimum=getattr(component, "minimum", None), maximum=getattr(component, "maximum", None),
                         step=getattr(component, "step", None),
                         choices=[str(c) for c in choices] if choices else None)


def collect_defaults(compat) -> None:
    """Build every script's UI once, off-page, so API calls get defaults even without the web UI."""
    pending = [(tab, s) for tab, runner in compat.runners.items() for s in runner.scripts if not s.ui_built]
    if not pending:
        return
    # One Blocks for both tabs: Gradio builds a whole app (~90 routes) at a Blocks' start and again at its
    # end, 0.3-2 s each, and this runs at every start of the API or of an in-process context.
    with gr.Blocks(analytics_enabled=False):
        for tab, loaded in pending:
            build_script_ui(compat, loaded, tab == "img2img")


def script_info(compat) -> list[dict[str, Any]]:
    """/sdapi/v1/script-info: every script of both tabs with its args (A1111's fields)."""
    collect_defaults(compat)
    out = []
    for tab, runner in compat.runners.items():
        for loaded in runner.scripts:
            out.append({"name": loaded.key, "is_alwayson": loaded.alwayson, "is_img2img": tab == "img2img",
                        "args": [vars(spec) for spec in loaded.arg_specs]})
    return out
