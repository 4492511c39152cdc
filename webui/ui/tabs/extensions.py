"""The Extensions tab is filled by its own issue; until then it is a slot with A1111's element id (tab_extensions)."""
from __future__ import annotations

from webui.ui.tabs import placeholder


def build(ctx, ui) -> None:
    placeholder.build(ctx, "extensions")
