"""What extensions add under the generation parameters of txt2img/img2img: native always-on sections,
A1111 always-on scripts, and the Script dropdown with each selectable script's controls.

Their components become form fields with prefixed names, which forms.request_from_values turns into
`request.extensions[<name>]["args"]` (always-on) and `script_name` / `script_args` (selected script),
the same shape the API gets from `alwayson_scripts`, `script_name` and `script_args`.
"""
from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from modules.extensions.hooks import describe_exception

log = logging.getLogger("webui.ui")

NONE_SCRIPT = "None"
ALWAYSON_PREFIX = "alwayson:"  # alwayson:<name>:<index>
SELECTED_PREFIX = "selected:"  # selected:<script title>:<index>


def build(ctx, tab: str) -> dict[str, Any]:
    """Render the sections and the Script dropdown; returns form fields (name -> component)."""
    is_img2img = tab == "img2img"
    system = getattr(ctx, "extensions", None)
    compat = getattr(system, "compat", None)
    fields: dict[str, Any] = {}
    with gr.Column(elem_id=f"{tab}_alwayson_scripts"):
        for section in (system.registry.sections(tab) if system is not None else []):
            with gr.Accordion(section.title, open=False, elem_id=f"{tab}_{_slug(section.extension)}_section"):
                components = _native_section(system, section, is_img2img)
            for index, component in enumerate(components):
                fields[f"{ALWAYSON_PREFIX}{section.extension}:{index}"] = component
            for declared in system.registry.infotext_fields():
                if declared.extension == section.extension and declared.arg is not None \
                        and declared.arg < len(components):
                    mark_paste_label(components[declared.arg], declared.label)
        if compat is not None:
            from webui.a1111.script_ui import build_script_ui

            for loaded in compat.runners[tab].scripts:
                if not loaded.alwayson:
                    continue
                with gr.Group(elem_id=f"{tab}_script_{_slug(loaded.key)}"):
                    components = build_script_ui(compat, loaded, is_img2img)
                for index, component in enumerate(components):
                    fields[f"{ALWAYSON_PREFIX}{loaded.key}:{index}"] = component
    fields.update(_script_dropdown(compat, tab, is_img2img))
    return fields


def _native_section(system, section, is_img2img: bool) -> list[Any]:
    try:
        components = list(section.build(is_img2img) or [])
    except Exception as exc:
        system.errors.add(section.extension, f"section {section.title!r}: {describe_exception(exc)}")
        log.error("Extension %s: section %s failed: %s", section.extension, section.title, exc)
        gr.Markdown(f"The {section.extension} extension could not build this section; see the Extensions tab.")
        return []
    return [c for c in components if isinstance(c, gr.blocks.Block)]


def _script_dropdown(compat, tab: str, is_img2img: bool) -> dict[str, Any]:
    selectable = [s for s in compat.runners[tab].scripts if not s.alwayson] if compat is not None else []
    fields: dict[str, Any] = {}
    with gr.Group(elem_id=f"{tab}_script_container"):
        dropdown = gr.Dropdown([NONE_SCRIPT, *[s.title for s in selectable]], value=NONE_SCRIPT, label="Script",
                               elem_id=f"{tab}_script_list")
        columns = []
        if selectable:
            from webui.a1111.script_ui import build_script_ui

            for loaded in selectable:
                with gr.Column(visible=False, elem_id=f"{tab}_script_{_slug(loaded.key)}") as column:
                    components = build_script_ui(compat, loaded, is_img2img)
                columns.append(column)
                for index, component in enumerate(components):
                    fields[f"{SELECTED_PREFIX}{loaded.title}:{index}"] = component
    if columns:
        titles = [s.title for s in selectable]

        def show(choice):
            return [gr.update(visible=choice == title) for title in titles]

        dropdown.change(show, [dropdown], columns, show_progress="hidden")
    fields["script_name"] = dropdown
    return fields


PASTE_LABEL = "_webui_infotext_label"


def mark_paste_label(component, label: str) -> None:
    """Pasting an infotext with `label` sets this component (A1111's infotext_fields / paste_field_names)."""
    setattr(component, PASTE_LABEL, label)


def paste_labels(fields: dict[str, Any]) -> dict[str, str]:
    """form field name -> infotext label, for the components extensions marked."""
    return {name: getattr(c, PASTE_LABEL) for name, c in fields.items() if getattr(c, PASTE_LABEL, None)}


def extension_fields(values: dict[str, Any]) -> tuple[dict[str, dict[str, list]], tuple[Any, ...]]:
    """(request.extensions, script_args) from form values with the prefixed names above."""
    alwayson: dict[str, dict[int, Any]] = {}
    selected: dict[str, dict[int, Any]] = {}
    for key, value in values.items():
        if key.startswith(ALWAYSON_PREFIX):
            name, _, index = key[len(ALWAYSON_PREFIX):].rpartition(":")
            alwayson.setdefault(name, {})[int(index)] = value
        elif key.startswith(SELECTED_PREFIX):
            title, _, index = key[len(SELECTED_PREFIX):].rpartition(":")
            selected.setdefault(title, {})[int(index)] = value
    extensions = {name: {"args": [args[i] for i in sorted(args)]} for name, args in alwayson.items()}
    chosen = values.get("script_name")
    script_args = tuple(selected[chosen][i] for i in sorted(selected[chosen])) if chosen in selected else ()
    return extensions, script_args


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")
