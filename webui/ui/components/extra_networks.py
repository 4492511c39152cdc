"""The extra-networks browser under the prompt of txt2img/img2img, with A1111's element ids.

The Networks button (`<tab>_extra_networks`, A1111's 🎴) shows the panel `<tab>_extra_tabs`: one tab per page
(`<tab>_checkpoints`, `<tab>_textual_inversion`, `<tab>_lora`, ...), each with search, sort + direction,
Refresh and a card grid.
Clicks, search and sort run in the browser (extra_networks.js) over HTML built once per refresh; the server
is asked only to refresh a page, to open a card's metadata view and to save its user metadata (name.json).
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from modules.extensions.networks import read_file_metadata, write_user_metadata
from webui.ui.components.extra_networks_html import (
    cards_html,
    controls_html,
    metadata_html,
    placeholder_html,
)
from webui.ui.components.extra_networks_pages import (
    NetworkPage,
    find_card,
    network_pages,
    safe_cards,
    safe_refresh,
)

ASSETS = Path(__file__).resolve().parents[1]  # webui/ui: extra_networks.js and .css
SORTS = [("Name", "name"), ("Date created", "date_created"), ("Date modified", "date_modified"),
         ("Path", "path")]
TOGGLE_LABEL = "Networks"  # A1111's 🎴 "Show/hide extra networks"; text shows without an emoji font


def page_script() -> str:
    """The browser side (card clicks, search, sort, the checkpoint hand-over) for the page head."""
    return (ASSETS / "extra_networks.js").read_text(encoding="utf-8")


def page_css() -> str:
    return (ASSETS / "extra_networks.css").read_text(encoding="utf-8")


@dataclass
class NetworksPanel:
    toggle: gr.Button
    tabs: gr.Tabs
    grids: dict[str, gr.HTML]  # page id -> its card grid


def render(tab: str, page: NetworkPage) -> str:
    cards, error = safe_cards(page)
    return cards_html(tab, page.id, page.kind, cards, error)


def build(ctx, tab: str, toggle: gr.Button | None = None) -> NetworksPanel:
    """The panel for `tab` ("txt2img"/"img2img"); `toggle` is the prompt row's Networks button (made if None)."""
    if toggle is None:
        toggle = gr.Button(TOGGLE_LABEL, elem_id=f"{tab}_extra_networks", size="sm", min_width=40)
    # Shown and hidden in the browser (a data attribute and CSS), so every id exists from the page's load.
    toggle.click(None, None, None, js=f"() => {{ extraNetworksToggle({tab!r}); }}")
    pages = network_pages(ctx)
    grids: dict[str, gr.HTML] = {}
    with gr.Tabs(elem_id=f"{tab}_extra_tabs", elem_classes=["extra-networks"],
                 overflow_behavior="wrap") as tabs:
        for page in pages:
            with gr.Tab(page.title, id=page.id, elem_id=f"{tab}_{page.id}"):
                grids[page.id] = _page(tab, page)
    # The grids are filled when the panel is first opened, not at page load: hundreds of cards would be
    # ~300 KB of /config and ~3000 DOM elements per tab for every visitor, opened or not.
    loader = gr.Button(visible="hidden", elem_id=f"{tab}_extra_networks_load")
    loader.click(lambda: [render(tab, page) for page in pages], None, [grids[page.id] for page in pages],
                 show_progress="hidden")
    # What the browser asks for (a card to open, a page to refresh) travels in this hidden box.
    request = gr.Textbox(visible="hidden", elem_id=f"{tab}_extra_networks_request")
    _refresher(tab, pages, grids, request)
    _metadata_editor(tab, pages, grids, request)
    return NetworksPanel(toggle, tabs, grids)


def _page(tab: str, page: NetworkPage) -> gr.HTML:
    prefix = f"{tab}_{page.id}"
    # Search, sort and Refresh are plain HTML controls (extra_networks.js): a set of Gradio widgets per
    # page and tab cost ~1000 DOM elements and a third more /config at every page load.
    gr.HTML(controls_html(tab, page.id, SORTS), elem_id=f"{prefix}_controls_html", padding=False)
    return gr.HTML(placeholder_html(tab, page.id), elem_id=f"{prefix}_cards_html", padding=False)


def _refresher(tab: str, pages: list[NetworkPage], grids: dict[str, gr.HTML], request: gr.Textbox) -> None:
    """A page's Refresh button names its page and clicks this hidden button: rescan, redraw that grid."""
    by_id = {page.id: page for page in pages}
    page_ids = list(grids)
    button = gr.Button(visible="hidden", elem_id=f"{tab}_extra_networks_refresh")

    def on_refresh(page_id: str):
        page = by_id.get(page_id or "")
        if page is None:
            return [gr.skip()] * len(page_ids)
        error = safe_refresh(page)
        cards, cards_error = safe_cards(page)
        fresh = cards_html(tab, page.id, page.kind, cards, error or cards_error)
        return [fresh if pid == page.id else gr.skip() for pid in page_ids]

    button.click(on_refresh, request, [grids[pid] for pid in page_ids], show_progress="hidden",
                 js=f"(v) => [extraNetworksPendingRefresh({tab!r})]")


def _metadata_editor(tab: str, pages: list[NetworkPage], grids: dict[str, gr.HTML],
                     request: gr.Textbox) -> None:
    """The metadata view + user-metadata editor of one card, opened by the card's ⓘ button."""
    by_id = {page.id: page for page in pages}
    prefix = f"{tab}_extra_networks"
    with gr.Group(visible=False, elem_id=f"{prefix}_meta", elem_classes=["extra-network-meta"]) as box:
        info = gr.HTML(elem_id=f"{prefix}_meta_info", padding=False)
        with gr.Row():
            description = gr.Textbox(label="Description", lines=2, elem_id=f"{prefix}_description", scale=3)
            weight = gr.Slider(0.0, 2.0, value=0.0, step=0.05, label="Preferred weight (0: the default)",
                               elem_id=f"{prefix}_weight", scale=1)
        with gr.Row():
            activation = gr.Textbox(label="Activation text", lines=2, elem_id=f"{prefix}_activation")
            negative = gr.Textbox(label="Negative prompt", lines=2, elem_id=f"{prefix}_negative")
        notes = gr.Textbox(label="Notes", lines=3, elem_id=f"{prefix}_notes")
        with gr.Row():
            save = gr.Button("Save", variant="primary", elem_id=f"{prefix}_save", size="sm", scale=0,
                             min_width=80)
            close = gr.Button("Close", elem_id=f"{prefix}_close", size="sm", scale=0, min_width=80)
            status = gr.HTML(elem_id=f"{prefix}_meta_status", padding=False)
    # Which card is open: (page id, card name), kept per browser session.
    current = gr.State(None)
    # The card's ⓘ button stores its (page, name) and clicks this; visible="hidden" keeps it in the page.
    open_button = gr.Button(visible="hidden", elem_id=f"{prefix}_meta_open")
    editor = [description, weight, activation, negative, notes]

    def on_open(request: str):
        page_id, _, name = (request or "").partition("/")
        page = by_id.get(page_id)
        card = find_card(page, name) if page is not None else None
        if card is None:
            missing = f"<div class='gen-error'>No card {html.escape(name)} on this page (press Refresh)</div>"
            return [gr.update(visible=True), missing, *[gr.skip()] * len(editor), None, ""]
        user = card.user_metadata
        try:
            preferred = float(user.get("preferred weight") or 0.0)
        except (TypeError, ValueError):
            preferred = 0.0
        view = metadata_html(card, read_file_metadata(card.path) if card.path else {})
        return [gr.update(visible=True), view,
                str(user.get("description") or card.description or ""), preferred,
                str(user.get("activation text") or ""), str(user.get("negative text") or ""),
                str(user.get("notes") or ""), (page.id, card.name), ""]

    open_button.click(on_open, request, [box, info, *editor, current, status], show_progress="hidden",
                      js=f"(v) => [extraNetworksPendingEdit({tab!r})]")

    page_ids = list(grids)

    def on_save(chosen, desc, preferred, act, neg, note):
        skip = [gr.skip()] * len(page_ids)
        page = by_id.get((chosen or ("",))[0])
        card = find_card(page, chosen[1]) if page is not None else None
        if card is None or not card.path:
            return ["<span class='gen-error'>Nothing to save: open a card first</span>", *skip]
        values = {"description": desc or "", "preferred weight": float(preferred or 0.0),
                  "activation text": act or "", "negative text": neg or "", "notes": note or ""}
        try:
            written = write_user_metadata(card.path, values)
        except OSError as exc:
            return [f"<span class='gen-error'>Not saved: {html.escape(str(exc))}</span>", *skip]
        # Rescan, so what a click inserts now carries the new activation text and weight.
        error = safe_refresh(page)
        cards, cards_error = safe_cards(page)
        fresh = cards_html(tab, page.id, page.kind, cards, error or cards_error)
        return [f"Saved {html.escape(written.name)}",
                *[fresh if pid == page.id else gr.skip() for pid in page_ids]]

    save.click(on_save, [current, *editor], [status, *[grids[pid] for pid in page_ids]],
               show_progress="hidden")
    close.click(lambda: gr.update(visible=False), None, box, show_progress="hidden", queue=False)
