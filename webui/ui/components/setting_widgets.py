"""One widget per setting (SettingSpec): used by the Settings tab and the quicksettings in the top bar.

The widget kind follows the default's type and the spec's choices; a few settings get ranges or choices
that only the running app knows (checkpoint titles, VAE files), as A1111 shows them.
"""
from __future__ import annotations

import gradio as gr

from modules.pipelines.registry import list_vae_files, vae_choices

# key -> (minimum, maximum, step) for numeric settings shown as sliders.
SLIDERS: dict[str, tuple[float, float, float]] = {
    "CLIP_stop_at_last_layers": (1, 12, 1),
    "jpeg_quality": (1, 100, 1),
    "show_progress_every_n_steps": (0, 32, 1),
    "sd_checkpoint_cache": (0, 10, 1),
    "eta_ddim": (0.0, 1.0, 0.01),
    "eta_ancestral": (0.0, 1.0, 0.01),
}


def elem_id(key: str) -> str:
    return f"setting_{key}"


def dynamic_choices(ctx, key: str) -> list | None:
    """Choices that come from files on disk rather than from the spec."""
    if key == "sd_model_checkpoint":
        return [ctx.checkpoints.title_of(info) for info in ctx.checkpoints.list()]
    if key == "sd_vae":
        return vae_choices(list_vae_files(ctx.paths.vae_dir, ctx.paths.ckpt_dirs))
    if key == "quicksettings_list":
        return [spec.key for spec in ctx.settings.specs()]
    return None


def make(ctx, spec, **kwargs):
    """The widget for `spec` showing its current value."""
    value = ctx.settings.get(spec.key)
    common = {"label": spec.label, "elem_id": elem_id(spec.key), "value": value, **kwargs}
    choices = dynamic_choices(ctx, spec.key)
    if isinstance(spec.default, list):
        return gr.Dropdown(choices or list(value), multiselect=True, allow_custom_value=True, **common)
    if choices is not None or spec.choices is not None:
        options = list(choices if choices is not None else spec.choices)
        if value not in options and value not in ("", None):
            options.append(value)  # keep a stored value visible even if its file went away
        return gr.Dropdown(options, allow_custom_value=choices is not None, **common)
    if isinstance(spec.default, bool):
        return gr.Checkbox(**common)
    if isinstance(spec.default, (int, float)):
        if spec.key in SLIDERS:
            low, high, step = SLIDERS[spec.key]
            return gr.Slider(low, high, step=step, **common)
        return gr.Number(precision=0 if isinstance(spec.default, int) else None, **common)
    return gr.Textbox(**common)
