"""The pages of the extra-networks browser as data: Checkpoints and Textual Inversion from the core, then one
page per extension extra-network provider that has `cards()` (see modules/extensions/networks.py).

Nothing here imports gradio: the panel (extra_networks.py) turns pages into tabs, the HTML module into cards.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modules.extensions.networks import NetworkCard, find_preview, read_user_metadata

log = logging.getLogger("webui.ui.extra_networks")

CHECKPOINTS = "checkpoints"
TEXTUAL_INVERSION = "textual_inversion"


@dataclass(frozen=True)
class NetworkPage:
    """One tab of the browser. `kind` says what a click does: "checkpoint" selects the model, anything else
    inserts the card's prompt. `cards()` is what the page shows now; `refresh()` rescans its folders."""

    id: str  # A1111's page id: the tab is `<tab>_<id>`, its cards `<tab>_<id>_cards`
    title: str
    kind: str
    cards: Callable[[], list[NetworkCard]]
    refresh: Callable[[], None]
    extension: str = ""


def page_id(name: str) -> str:
    """"Lora" -> "lora", "Hypernetworks v2" -> "hypernetworks_v2" (the part of A1111's element ids)."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "network"


def _sort_keys(path: Path, name: str) -> dict:
    try:
        stat = path.stat()
        created, modified = int(getattr(stat, "st_birthtime", stat.st_ctime)), int(stat.st_mtime)
    except OSError:
        created = modified = 0
    return {"name": name.lower(), "date_created": created, "date_modified": modified,
            "path": str(path).lower()}


def checkpoint_cards(ctx) -> list[NetworkCard]:
    """One card per listed checkpoint; its `prompt` is empty (a click selects it by `path`'s name)."""
    cards = []
    for info in ctx.checkpoints.list():
        user = read_user_metadata(info.path)
        terms = tuple(t for t in (info.name, info.shorthash or "") if t)
        cards.append(NetworkCard(
            name=info.model_name, prompt="", path=str(info.path),
            preview=str(p) if (p := find_preview(info.path)) else None,
            description=str(user.get("description") or ""), search_terms=terms,
            sort_keys=_sort_keys(info.path, info.name), user_metadata=user,
            # what the quicksettings dropdown is told to select (ctx.checkpoints.find takes the name)
            metadata={"checkpoint": info.name}))
    return cards


def embedding_cards(ctx) -> list[NetworkCard]:
    """One card per readable embedding; a click inserts its name (the word that triggers it)."""
    database = getattr(ctx, "embeddings", None)
    if database is None:
        return []
    cards = []
    for name, embedding in sorted(database.embeddings.items(), key=lambda item: item[0].lower()):
        path = Path(embedding.path)
        user = read_user_metadata(path)
        activation = str(user.get("activation text") or "").strip()
        cards.append(NetworkCard(
            name=name, prompt=f"{name}, {activation}" if activation else name, path=str(path),
            preview=str(p) if (p := find_preview(path)) else None,
            description=str(user.get("description") or ""), search_terms=(embedding.shorthash,),
            sort_keys=_sort_keys(path, name), user_metadata=user,
            negative_prompt=str(user.get("negative text") or "").strip()))
    return cards


def _refresh_checkpoints(ctx) -> None:
    ctx.checkpoints.refresh()


def _refresh_embeddings(ctx) -> None:
    if getattr(ctx, "embeddings", None) is not None:
        ctx.embeddings.reload()


def provider_pages(ctx) -> list[NetworkPage]:
    """A page for every registered extra-network provider with `cards()` (LoRA, ...), in load order."""
    system = getattr(ctx, "extensions", None)
    if system is None:
        return []
    pages, seen = [], {CHECKPOINTS, TEXTUAL_INVERSION}
    for entry in system.registry.providers("extra_network"):
        provider = entry.provider
        if not callable(getattr(provider, "cards", None)):
            continue  # a network without a browser page (it only handles its prompt tags)
        pid = page_id(entry.name)
        if pid in seen:
            log.warning("extra network %s of %s: a page %r exists already", entry.name, entry.extension, pid)
            continue
        seen.add(pid)
        refresh = getattr(provider, "refresh", None)
        pages.append(NetworkPage(
            id=pid, title=str(getattr(provider, "title", "") or entry.name), kind="network",
            cards=provider.cards, refresh=refresh if callable(refresh) else (lambda: None),
            extension=entry.extension))
    return pages


def network_pages(ctx) -> list[NetworkPage]:
    """Checkpoints, Textual Inversion, then the extensions' pages (A1111's order)."""
    return [
        NetworkPage(CHECKPOINTS, "Checkpoints", "checkpoint", lambda: checkpoint_cards(ctx),
                    lambda: _refresh_checkpoints(ctx)),
        NetworkPage(TEXTUAL_INVERSION, "Textual Inversion", "embedding", lambda: embedding_cards(ctx),
                    lambda: _refresh_embeddings(ctx)),
        *provider_pages(ctx),
    ]


def safe_cards(page: NetworkPage) -> tuple[list[NetworkCard], str | None]:
    """The page's cards, or [] and the error text when its provider raised (one bad page leaves the rest)."""
    try:
        return [c for c in page.cards() if isinstance(c, NetworkCard)], None
    except Exception as exc:  # noqa: BLE001 - an extension's bug is shown on its page, not raised into the UI
        log.exception("extra networks page %s failed", page.id)
        return [], f"{page.title}: {type(exc).__name__}: {exc}"


def safe_refresh(page: NetworkPage) -> str | None:
    """Rescan the page's folders; the error text when that raised."""
    try:
        page.refresh()
    except Exception as exc:  # noqa: BLE001 - see safe_cards
        log.exception("extra networks page %s: refresh failed", page.id)
        return f"{page.title}: refresh failed: {type(exc).__name__}: {exc}"
    return None


def find_card(page: NetworkPage, name: str) -> NetworkCard | None:
    cards, _ = safe_cards(page)
    return next((c for c in cards if c.name == name), None)
