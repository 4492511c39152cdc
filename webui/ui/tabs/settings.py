"""Settings tab: one page per SettingSpec.section, Apply settings (config.json, written atomically), Reload UI,
the "Defaults" page (ui-config.json: default values of the generation widgets) and Sysinfo."""
from __future__ import annotations

import hashlib
import html
import json
import platform
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import gradio as gr

from modules.settings import SettingsError
from webui.ui.components import setting_widgets
from webui.ui.packed_inputs import pack_inputs, wire_packed
from webui.ui.topbar import quicksetting_keys

SECTION_TITLES = {"sd": "Stable Diffusion", "saving": "Saving images", "sampler": "Sampler parameters",
                  "ui": "User interface", "other": "Other"}
RELOAD_JS = "() => { setTimeout(() => location.reload(), 50); }"


def build(ctx, ui) -> None:
    on_page = [spec for spec in ctx.settings.specs() if spec.key not in quicksetting_keys(ctx)]
    sections: dict[str, list] = {}
    for spec in on_page:
        sections.setdefault(spec.section, []).append(spec)

    with gr.Row(elem_id="settings_top"):
        apply = gr.Button("Apply settings", variant="primary", elem_id="settings_submit")
        reload = gr.Button("Reload UI", elem_id="settings_restart_gradio")
    result = gr.HTML(elem_id="settings_result")
    widgets = {}
    with gr.Tabs(elem_id="settings", overflow_behavior="wrap"):
        for section, specs in sections.items():
            title = SECTION_TITLES.get(section, section.replace("_", " ").title())
            with gr.Tab(title, id=f"settings_{section}", elem_id=f"settings_{section}"):
                for spec in specs:
                    widgets[spec.key] = setting_widgets.make(ctx, spec)
        with gr.Tab("Defaults", id="settings_defaults", elem_id="settings_defaults"):
            _defaults_page(ui)
        with gr.Tab("Sysinfo", id="settings_sysinfo", elem_id="settings_sysinfo"):
            _sysinfo_page(ctx)

    keys = list(widgets)

    form = pack_inputs(widgets, "settings_form")

    def on_apply(values: dict, request=None):
        current = ctx.settings.as_dict()
        changes = {k: v for k, v in values.items() if v != current.get(k)}
        try:
            changed = ctx.settings.update(changes)
        except SettingsError as exc:
            return f"<div class='gen-error'>{html.escape(str(exc))}</div>"
        if not changed:
            return "<div class='gen-note'>No settings changed.</div>"
        names = ", ".join(html.escape(k) for k in changed)
        return f"<div class='gen-note'>{len(changed)} settings changed: {names}.</div>"

    wire_packed(apply.click, form, on_apply, result, show_progress="hidden")
    reload.click(None, None, None, js=RELOAD_JS)
    # The page is built once at start-up: show the stored values (changed by Apply, the API or another
    # browser) on a page load that finds them changed since the build (the stamp), not on every load.
    def stored() -> list:
        return [ctx.settings.get(k) for k in keys]

    def stamp() -> str:
        return hashlib.sha1(json.dumps(stored(), sort_keys=True, default=str).encode()).hexdigest()

    ui.on_load(stored, [widgets[k] for k in keys], stamp=stamp)


def _defaults_page(ui) -> None:
    gr.Markdown("Set the generation controls on the txt2img and img2img tabs the way you want them to "
                "start, then press **Apply** here: their values become the defaults in `ui-config.json`. "
                "Press **Reload UI** to see them.")
    with gr.Row():
        view = gr.Button("View changes", elem_id="ui_defaults_view")
        save = gr.Button("Apply", variant="primary", elem_id="ui_defaults_apply")
    table = gr.HTML(elem_id="ui_defaults_review")
    form = pack_inputs({k: ui.defaults.widgets[k] for k in ui.defaults.keys()}, "ui_defaults_form")

    def changes(values: dict) -> dict:
        out = {}
        for key, value in values.items():
            widget = ui.defaults.widgets[key]
            if value != getattr(widget, "value", None):
                out[key] = value
        return out

    def on_view(values: dict, request=None):
        found = changes(values)
        if not found:
            return "<div class='gen-note'>No changes from the current defaults.</div>"
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(ui.defaults.widgets[k].value))}</td>"
                       f"<td>{html.escape(str(v))}</td></tr>" for k, v in found.items())
        return f"<table class='defaults-table'><tr><th>Key</th><th>Was</th><th>Now</th></tr>{rows}</table>"

    def on_save(values: dict, request=None):
        found = changes(values)
        try:
            written = ui.defaults.save_values(found)
        except OSError as exc:
            return f"<div class='gen-error'>Could not write {ui.defaults.path.name}: {html.escape(str(exc))}</div>"
        return (f"<div class='gen-note'>Wrote {len(written)} defaults to {html.escape(str(ui.defaults.path))}. "
                "Reload UI to use them.</div>")

    wire_packed(view.click, form, on_view, table, show_progress="hidden")
    wire_packed(save.click, form, on_save, table, show_progress="hidden")


def sysinfo(ctx) -> dict:
    """What a bug report needs: versions, device, flags, paths, the loaded model and the settings."""
    versions = {}
    for package in ("torch", "diffusers", "transformers", "gradio", "fastapi", "safetensors", "Pillow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    flags = {k: v for k, v in vars(ctx.flags).items() if "auth" not in k}  # never leak passwords
    current = ctx.pipelines.current if ctx.pipelines is not None else None
    return {
        "python": sys.version.split()[0], "platform": platform.platform(), "versions": versions,
        "device": ctx.device.describe(), "flags": flags,
        "paths": {k: str(v) for k, v in vars(ctx.paths).items() if isinstance(v, Path)},
        "model": str(current.checkpoint.path) if current is not None else None, "model_error": ctx.model_error,
        "settings": ctx.settings.as_dict(),
    }


def _sysinfo_page(ctx) -> None:
    show = gr.Button("Show system info", elem_id="settings_sysinfo_show")
    code = gr.Code(language="json", elem_id="settings_sysinfo_text", visible=False)
    download = gr.File(visible=False, interactive=False, elem_id="settings_sysinfo_download")

    def on_show():
        text = json.dumps(sysinfo(ctx), indent=2, default=str)
        path = Path(tempfile.mkdtemp(prefix="webui-sysinfo-")) / "sysinfo.json"
        path.write_text(text, encoding="utf-8")
        return gr.update(value=text, visible=True), gr.update(value=str(path), visible=True)

    show.click(on_show, None, [code, download], show_progress="hidden")
