"""Top-level tabs that extensions add: native `api.add_tab` tabs and A1111's `on_ui_tabs` results,
placed before Settings as in A1111. A tab whose builder fails shows a line saying so; the page still loads.
"""
from __future__ import annotations

import contextlib
import html
import logging
from typing import Any

import gradio as gr

from modules.extensions.hooks import describe_exception

log = logging.getLogger("webui.ui")
# Core tabs an extension may fill (api.add_tab(..., elem_id=<slot>)): the core tab renders that extension
# tab in place of its placeholder, so it is not added a second time before Settings.
SLOT_TABS = ("train",)


def collect_a1111_tabs(compat) -> list[tuple[str, Any, str, str]]:
    """Run on_ui_tabs callbacks (outside the page's Blocks: they build their own gr.Blocks) and return
    (extension, blocks, title, elem_id) for each tab they offer."""
    if compat is None:
        return []
    tabs = []
    for extension, fn in compat.callbacks.registered("ui_tabs"):
        try:
            with compat.running(extension):
                offered = fn() or []
        except Exception as exc:
            compat.report(extension, f"on_ui_tabs: {describe_exception(exc)}")
            continue
        for entry in offered:
            try:
                blocks, title, elem_id = entry[0], entry[1], entry[2]
            except (TypeError, IndexError):
                compat.report(extension, f"on_ui_tabs returned {entry!r}, not (blocks, title, elem_id)")
                continue
            tabs.append((extension, blocks, str(title), str(elem_id)))
    return tabs


def render_extension_tabs(ctx, a1111_tabs: list[tuple[str, Any, str, str]]) -> None:
    """Inside the page's gr.Tabs: one gr.Tab per extension tab (A1111 ids: tab_<elem_id>)."""
    system = getattr(ctx, "extensions", None)
    for spec in (system.registry.tabs() if system is not None else []):
        if spec.elem_id in SLOT_TABS:
            continue
        with gr.Tab(spec.title, id=spec.elem_id, elem_id=f"tab_{spec.elem_id}"):
            _guarded(system.errors, spec.extension, spec.build)
    for extension, blocks, title, elem_id in a1111_tabs:
        with gr.Tab(title, id=elem_id, elem_id=f"tab_{elem_id}"):
            _guarded(system.errors, extension, blocks.render)


def render_slot(ctx, elem_id: str) -> bool:
    """Inside a core tab: build the first extension tab that fills this slot; False when none does."""
    system = getattr(ctx, "extensions", None)
    for spec in (system.registry.tabs() if system is not None else []):
        if spec.elem_id == elem_id:
            _guarded(system.errors, spec.extension, spec.build)
            return True
    return False


def _guarded(errors, extension: str, build) -> None:
    try:
        with contextlib.ExitStack():
            build()
    except Exception as exc:
        message = f"tab: {describe_exception(exc)}"
        errors.add(extension, message)
        log.error("Extension %s: %s", extension, message)
        gr.HTML(f"<div class='gen-error'>The {html.escape(extension)} extension could not build this tab: "
                f"{html.escape(str(exc))}. See the Extensions tab.</div>")
