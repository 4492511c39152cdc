"""The "Override settings" box of txt2img and img2img (A1111's `<tab>_override_settings`).

A multiselect of "Label: value" entries (e.g. "Clip skip: 2", "RNG: NV") that a pasted or sent infotext
fills with the settings it names whose values differ from the current ones; Generate applies the entries
as that job's override_settings (forms.override_settings_from_entries) and the settings store is never
written. Hidden while empty; the user removes an entry to stop overriding it.

Paste and send-to fill the box through forms.values_from_infotext like any other field, without the
settings store at hand: the box's change event drops the entries equal to the current settings, so the
same rule holds whichever path filled it.
"""
from __future__ import annotations

import gradio as gr

from webui.ui import forms

FIELD = "override_settings"


def build(ctx, tab: str) -> dict:
    """{"override_settings": the box}; entries not equal to ctx.settings stay, the others are dropped."""
    # "hidden" rather than False: a component left out of the page fires no change event, and the
    # change event below is what drops the entries equal to the current settings.
    box = gr.Dropdown(label="Override settings", choices=[], value=[], multiselect=True, visible="hidden",
                      allow_custom_value=True, interactive=True, elem_id=f"{tab}_override_settings")

    def on_change(entries):
        entries = list(entries or [])
        kept = forms.drop_current(entries, ctx.settings)
        visible = True if kept else "hidden"
        if kept == entries:
            return gr.update(visible=visible)  # a value sent back would fire this event again, endlessly
        return gr.update(value=kept, choices=kept, visible=visible)

    box.change(on_change, [box], [box], queue=False, show_progress="hidden")
    return {FIELD: box}
