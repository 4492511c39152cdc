"""Send to txt2img / img2img / inpaint / extras: an image and its infotext land in another tab's form.

Every sender gives (image, infotext); the infotext goes through forms.values_from_infotext, the same path
as "paste parameters", so a sent image restores exactly what PNG Info would.
"""
from __future__ import annotations

import gradio as gr

from webui.ui import forms
from webui.ui.components.extension_sections import paste_labels


def wire(send, target, main_tabs: gr.Tabs | None, paste_filter=None) -> None:
    """Connect one SendButton to one SendTarget (registry types)."""
    field_names = list(target.fields)
    labels = paste_labels(target.fields)  # extensions' infotext fields travel too
    outputs = [target.fields[name] for name in field_names]
    if target.image is not None:
        outputs.append(target.image)
    if main_tabs is not None:
        outputs.append(main_tabs)
    if target.subtabs is not None:
        outputs.append(target.subtabs)
    if target.mode_state is not None:
        outputs.append(target.mode_state)

    def on_send(*values):
        try:
            image, infotext = send.source(*values)
        except Exception as exc:  # noqa: BLE001 - a failed send must not pop a stack trace
            gr.Warning(f"Nothing sent: {exc}")
            return [gr.skip()] * len(outputs)
        if not forms.has_parameters(infotext or ""):
            # e.g. an Extras result, whose info line says what Extras did: the generation parameters
            # travel in the image's own `parameters` chunk.
            infotext = getattr(image, "info", {}).get("parameters", "") if image is not None else ""
        updates = forms.updates_from_infotext(infotext or "", field_names, labels, paste_filter)
        if target.image is not None:
            updates.append(gr.update(value=image) if image is not None else gr.skip())
        if main_tabs is not None:
            updates.append(gr.Tabs(selected=target.tab_id))
        if target.subtabs is not None:
            updates.append(gr.Tabs(selected=target.subtab_id))
        if target.mode_state is not None:
            updates.append(target.subtab_id)
        return updates

    send.button.click(on_send, inputs=send.inputs, outputs=outputs, show_progress="hidden")
