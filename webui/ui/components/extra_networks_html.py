"""HTML of the extra-networks browser: the card grid of a page and a card's metadata view.

Built once per refresh (never per keystroke): search and sort run in the browser over the data-* attributes
written here (extra_networks.js). Every name and text is HTML-escaped, attributes included: a LoRA file
named `<img src=x onerror=...>.safetensors` shows as text. There are no inline event handlers; the page's
script handles clicks by delegation, so nothing in a card is ever run as code.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from modules.extensions.networks import NetworkCard, base_model, tag_frequency

THUMB_ROUTE = "/sd_extra_networks/thumb"  # A1111's preview route; extra_networks_route.py serves it
# Header values that are long JSON blobs shown in their own view (tags) or only clutter the table.
HIDDEN_METADATA = {"ss_tag_frequency", "ss_dataset_dirs", "ss_bucket_info", "checkpoint"}
MAX_VALUE_CHARS = 400
MAX_TAGS = 200


def esc(value: Any) -> str:
    """Text and attribute escaping in one (quotes too); `$`, `{` and backticks as entities, so no template
    syntax survives into the page either."""
    return (html.escape(str(value), quote=True).replace("$", "&#36;").replace("{", "&#123;")
            .replace("}", "&#125;").replace("`", "&#96;"))


def preview_url(preview: str | Path) -> str:
    """`./sd_extra_networks/thumb?filename=...&mtime=...`: the mtime makes a new preview bypass the cache."""
    path = Path(preview)
    try:
        mtime = int(path.stat().st_mtime)
    except OSError:
        mtime = 0
    return f".{THUMB_ROUTE}?filename={quote(str(path), safe='')}&mtime={mtime}"


def card_html(card: NetworkCard, page_id: str, kind: str) -> str:
    """One `.card`: preview (or a placeholder with the name's first letter), name, description, and the
    metadata button. What a click does rides in data-* attributes."""
    search = " ".join([card.name, *card.search_terms, card.path]).lower()
    attrs = {
        "data-page": page_id, "data-name": card.name, "data-prompt": card.prompt,
        "data-negative": card.negative_prompt, "data-search": search,
    }
    if kind == "checkpoint":
        attrs["data-checkpoint"] = str(card.metadata.get("checkpoint") or card.name)
    for key in ("name", "date_created", "date_modified", "path"):
        attrs[f"data-sort-{key}"] = card.sort_keys.get(key, card.name.lower() if key == "name" else "")
    attributes = " ".join(f'{k}="{esc(v)}"' for k, v in attrs.items())
    if card.preview:
        picture = f'<img class="preview" src="{esc(preview_url(card.preview))}" loading="lazy" alt="">'
    else:
        picture = f'<div class="preview no-preview">{esc(card.name[:1].upper())}</div>'
    description = f'<span class="description">{esc(card.description)}</span>' if card.description else ""
    return (f'<div class="card" {attributes} title="{esc(card.name)}">{picture}'
            f'<div class="button-row"><span class="metadata-button" title="Show metadata and edit">&#9432;'
            f'</span></div><div class="actions"><span class="name">{esc(card.name)}</span>{description}'
            f'</div></div>')


def cards_html(tab: str, page_id: str, kind: str, cards: list[NetworkCard], error: str | None = None) -> str:
    """The grid of one page in one tab (`<tab>_<page>_cards`, class `extra-network-cards`)."""
    body = "".join(card_html(card, page_id, kind) for card in cards)
    if error:
        body = f'<div class="extra-network-error">{esc(error)}</div>' + body
    if not cards and not error:
        body = '<div class="extra-network-empty">Nothing here: add files to its folder, then Refresh.</div>'
    return (f'<div id="{esc(tab)}_{esc(page_id)}_cards" class="extra-network-cards" data-tab="{esc(tab)}" '
            f'data-page="{esc(page_id)}" data-count="{len(cards)}">{body}</div>')


def placeholder_html(tab: str, page_id: str) -> str:
    """The grid before the panel is first opened (its id exists from the page load, as in A1111)."""
    return (f'<div id="{esc(tab)}_{esc(page_id)}_cards" class="extra-network-cards" data-tab="{esc(tab)}" '
            f'data-page="{esc(page_id)}" data-loading="true"></div>')


def controls_html(tab: str, page_id: str, sorts: list[tuple[str, str]]) -> str:
    """Search box, sort choice, direction and Refresh of one page (A1111's ids), handled by the page script."""
    prefix = f"{esc(tab)}_{esc(page_id)}"
    options = "".join(f'<option value="{esc(value)}">{esc(label)}</option>' for label, value in sorts)
    return (f'<div id="{prefix}_controls" class="extra-network-controls" data-prefix="{prefix}"'
            f' data-tab="{esc(tab)}">'
            f'<input type="search" id="{prefix}_extra_search" class="extra-network-search" placeholder="Search"'
            f' aria-label="Search" autocomplete="off">'
            f'<select id="{prefix}_extra_sort" class="extra-network-sort" aria-label="Sort by">{options}</select>'
            f'<button type="button" id="{prefix}_extra_sort_dir" class="extra-network-sort-dir"'
            f' title="Reverse the order">&#8645;</button>'
            f'<button type="button" id="{prefix}_extra_refresh" class="extra-network-refresh"'
            f' data-page="{esc(page_id)}">Refresh</button></div>')


def _table(rows: list[tuple[str, str]], css_class: str) -> str:
    cells = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="{css_class}">{cells}</table>'


def _shorten(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "..."


def metadata_html(card: NetworkCard, file_metadata: dict[str, Any]) -> str:
    """The metadata view: name, file, base model, training tags by frequency, the file's header."""
    metadata = {**file_metadata, **card.metadata}
    rows = [("Name", card.name), ("File", card.path or "-")]
    model = base_model(metadata, card.user_metadata)
    if model:
        rows.append(("Base model", model))
    parts = [f'<div class="extra-network-metadata" data-name="{esc(card.name)}">',
             _table(rows, "extra-network-info")]
    tags = tag_frequency(metadata)
    if tags:
        shown = tags[:MAX_TAGS]
        more = f" (the first {MAX_TAGS} of {len(tags)})" if len(tags) > MAX_TAGS else ""
        parts.append(f"<h4>Training tags{esc(more)}</h4>")
        parts.append(_table([(tag, str(count)) for tag, count in shown], "extra-network-tags"))
    header = [(k, _shorten(v)) for k, v in sorted(metadata.items()) if k not in HIDDEN_METADATA]
    if header:
        parts.append("<h4>File metadata</h4>")
        parts.append(_table(header, "extra-network-header"))
    parts.append("</div>")
    return "".join(parts)
