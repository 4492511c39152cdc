"""User settings persisted in `config.json` (A1111 key names), written atomically.

A corrupt config.json is moved aside to `config.json.bad` and the defaults are used, so a bad file
never stops the app and the user's file is not lost. A change is written to the file before it is applied in
memory: when the write fails (disk full, read-only folder) nothing changes and the error says so.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from modules.files import write_json_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettingSpec:
    """One setting: key (A1111 name), default, label, section; the default's type is the value type."""

    key: str
    default: Any
    label: str
    section: str = "other"
    choices: tuple[Any, ...] | None = None


# A1111 key names, so existing clients that POST /sdapi/v1/options find them.
DEFAULT_SPECS: tuple[SettingSpec, ...] = (
    SettingSpec("sd_model_checkpoint", "", "Stable Diffusion checkpoint", "sd"),
    SettingSpec("sd_checkpoint_cache", 0, "Checkpoints to cache in RAM", "sd"),
    SettingSpec("sd_vae", "Automatic", "SD VAE", "sd"),
    SettingSpec("CLIP_stop_at_last_layers", 1, "Clip skip", "sd"),
    SettingSpec("emphasis", "Original", "Emphasis mode", "sd", ("Original", "No norm", "None")),
    SettingSpec("pad_cond_uncond", False, "Pad prompt/negative prompt to the same length", "sd"),
    SettingSpec("enable_prompt_comments", True, "Enable # comments in prompts", "sd"),
    SettingSpec("samples_save", True, "Always save all generated images", "saving"),
    SettingSpec("samples_format", "png", "File format for images", "saving", ("png", "jpg", "webp")),
    SettingSpec("samples_filename_pattern", "", "Images filename pattern", "saving"),
    SettingSpec("grid_save", True, "Always save all generated image grids", "saving"),
    SettingSpec("outdir_samples", "", "Output directory for images (empty = default)", "saving"),
    SettingSpec("outdir_txt2img_samples", "outputs/txt2img-images", "Output directory for txt2img images", "saving"),
    SettingSpec("outdir_img2img_samples", "outputs/img2img-images", "Output directory for img2img images", "saving"),
    SettingSpec("outdir_extras_samples", "outputs/extras-images", "Output directory for extras images", "saving"),
    SettingSpec("outdir_grids", "", "Output directory for grids (empty = the two below)", "saving"),
    SettingSpec("outdir_txt2img_grids", "outputs/txt2img-grids", "Output directory for txt2img grids", "saving"),
    SettingSpec("outdir_img2img_grids", "outputs/img2img-grids", "Output directory for img2img grids", "saving"),
    SettingSpec("outdir_save", "log/images", "Directory for saving images using the Save button", "saving"),
    SettingSpec("jpeg_quality", 80, "Quality for saved jpeg images", "saving"),
    # A1111's other saving keys (modules/images/saving.py and outputs.py read them; defaults are A1111's).
    SettingSpec("save_images_add_number", True, "Add number to filename when saving", "saving"),
    SettingSpec("grid_format", "png", "File format for grids", "saving", ("png", "jpg", "webp")),
    SettingSpec("save_txt", False, "Create a text file next to every image with generation parameters", "saving"),
    SettingSpec("webp_lossless", False, "Use lossless compression for webp images", "saving"),
    SettingSpec("export_for_4chan", True, "Save copy of large images as JPG", "saving"),
    SettingSpec("img_downscale_threshold", 4.0, "File size limit for the above option, MB", "saving"),
    SettingSpec("target_side_length", 4000, "Width/height limit for the above option, in pixels", "saving"),
    SettingSpec("save_to_dirs", True, "Save images to a subdirectory", "saving"),
    SettingSpec("grid_save_to_dirs", True, "Save grids to a subdirectory", "saving"),
    SettingSpec("use_save_to_dirs_for_ui", False, "When using the Save button, save images to a subdirectory",
                "saving"),
    SettingSpec("directories_filename_pattern", "[date]", "Directory name pattern", "saving"),
    SettingSpec("directories_max_prompt_words", 8, "Max prompt words for [prompt_words] pattern", "saving"),
    SettingSpec("live_previews_enable", True, "Show live previews", "ui"),
    SettingSpec("show_progress_every_n_steps", 5, "Live preview every N sampling steps (0 = off)", "ui"),
    SettingSpec("show_progress_type", "Approx NN", "Live preview method (TAESD: models/VAE-approx/taesd_decoder.*; "
                "the others use the cheap latent->RGB map)", "ui", ("Full", "Approx NN", "Approx cheap", "TAESD")),
    SettingSpec("quicksettings_list", ["sd_model_checkpoint"], "Quicksettings list", "ui"),
    SettingSpec("eta_ddim", 0.0, "Eta for DDIM", "sampler"),
    SettingSpec("eta_ancestral", 1.0, "Eta for k-diffusion ancestral samplers", "sampler"),
    # A1111's noise source (modules/rng): GPU = the model's device, CPU = same on every machine, NV = CUDA's.
    SettingSpec("randn_source", "GPU", "Random number generator source", "sd", ("GPU", "CPU", "NV")),
    SettingSpec("eta_noise_seed_delta", 0, "Eta noise seed delta (ENSD; step noise from seed + delta)", "sampler"),
    # A1111's sampler parameters (modules/sampler_params.py says which samplers take each one).
    SettingSpec("s_churn", 0.0, "sigma churn (Euler; 0 = off)", "sampler"),
    SettingSpec("s_tmin", 0.0, "sigma tmin (Euler)", "sampler"),
    SettingSpec("s_tmax", 0.0, "sigma tmax (Euler; 0 = infinity)", "sampler"),
    SettingSpec("s_noise", 1.0, "sigma noise (Euler)", "sampler"),
    # A1111's steps without the unconditional pass (modules/generation/guidance.py has the rules).
    SettingSpec("skip_early_cond", 0.0, "Ignore negative prompt during early sampling (fraction of steps; "
                "0 = off)", "sampler"),
    SettingSpec("s_min_uncond", 0.0, "Negative Guidance minimum sigma (skip the negative prompt on every "
                "other step below this sigma; 0 = off)", "sampler"),
    SettingSpec("s_min_uncond_all", False, "Negative Guidance minimum sigma all steps", "sampler"),
    SettingSpec("sigma_min", 0.0, "Schedule min sigma (0 = the model's)", "sampler"),
    SettingSpec("sigma_max", 0.0, "Schedule max sigma (0 = the model's)", "sampler"),
    SettingSpec("rho", 0.0, "Schedule rho (0 = the schedule's default)", "sampler"),
    SettingSpec("initial_noise_multiplier", 1.0, "Noise multiplier for img2img", "img2img"),
    SettingSpec("img2img_extra_noise", 0.0, "Extra noise multiplier for img2img and hires fix", "img2img"),
    SettingSpec("img2img_fix_steps", False, "With img2img, do exactly the amount of steps the slider specifies",
                "img2img"),
    SettingSpec("sd_vae_as_default", True, "Ignore selected VAE for checkpoints with their own .vae file", "sd"),
    SettingSpec("auto_vae_precision", True, "Retry the VAE in float32 when it produces NaNs", "sd"),
    # A1111's names: model upscalers (ESRGAN, SwinIR, ... through spandrel) run in tiles of this many pixels.
    SettingSpec("ESRGAN_tile", 192, "Tile size for upscaler models (pixels, 0 = no tiling)", "upscaling"),
    SettingSpec("ESRGAN_tile_overlap", 8, "Tile overlap for upscaler models (pixels)", "upscaling"),
    # Extras steps (modules/postprocessing/steps.py): names run first in this order; names hidden in Extras.
    SettingSpec("postprocessing_operation_order", [], "Postprocessing operation order", "postprocessing"),
    SettingSpec("postprocessing_disable_in_extras", [], "Disable postprocessing operations in Extras tab",
                "postprocessing"),
    # Optimizations (modules/performance, docs/performance.md). A1111's ToMe keys; the rest act when a model
    # is placed, so changing one reloads the current model between jobs.
    SettingSpec("token_merging_ratio", 0.0, "Token merging ratio (ToMe; 0 = off, 0.5 = max sensible)",
                "optimizations"),
    SettingSpec("token_merging_ratio_img2img", 0.0,
                "Token merging ratio for img2img (when not 0, overrides above)", "optimizations"),
    SettingSpec("token_merging_ratio_hr", 0.0,
                "Token merging ratio for high-res pass (when not 0, overrides above)", "optimizations"),
    SettingSpec("unet_compile", False,
                "Compile the UNet with torch.compile (the first job after a load is slower)", "optimizations"),
    SettingSpec("unet_compile_mode", "default", "torch.compile mode", "optimizations",
                ("default", "reduce-overhead", "max-autotune")),
    SettingSpec("opt_channelslast", "Automatic",
                "Channels-last memory format for the UNet (Automatic: on CUDA)", "optimizations",
                ("Automatic", "On", "Off")),
    SettingSpec("sd_dtype", "Automatic", "Model precision (Automatic: float16 on GPUs, float32 on CPU; "
                "--no-half keeps float32)", "optimizations", ("Automatic", "float16", "bfloat16", "float32")),
    SettingSpec("sd_vae_tiling", "Automatic", "VAE tiling (Automatic: with --lowvram/--medvram, and on a GPU "
                "for images over 1024 px)", "optimizations", ("Automatic", "On", "Off")),
    SettingSpec("sd_vae_slicing", "Automatic", "VAE slicing: decode a batch one image at a time",
                "optimizations", ("Automatic", "On", "Off")),
)


class SettingsError(ValueError):
    """A setting key or value the user can fix; the message is shown verbatim."""


class SettingsSaveError(SettingsError):
    """config.json could not be written; the settings in memory are unchanged."""


class Settings:
    """Thread-safe settings store backed by a JSON file; values typed by their defaults."""

    def __init__(self, path: Path, specs: tuple[SettingSpec, ...] = DEFAULT_SPECS):
        self.path = Path(path)
        self._specs: dict[str, SettingSpec] = {s.key: s for s in specs}
        self._values: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._listeners: list[Callable[[str, Any], None]] = []
        self.load_warning: str | None = None
        self.load()

    # ---- reading -----------------------------------------------------------------
    def get(self, key: str) -> Any:
        with self._lock:
            if key in self._values:
                return self._values[key]
            spec = self._specs.get(key)
            if spec is None:
                raise SettingsError(f"unknown setting {key!r}")
            return spec.default

    def as_dict(self) -> dict[str, Any]:
        """Every known setting with its current value (defaults filled), plus unknown stored keys."""
        with self._lock:
            out = {k: s.default for k, s in self._specs.items()}
            out.update(self._values)
            return out

    def specs(self) -> list[SettingSpec]:
        return list(self._specs.values())

    def register(self, spec: SettingSpec) -> None:
        """Extensions add their own settings; a stored value survives until the extension registers."""
        with self._lock:
            self._specs[spec.key] = spec

    def on_change(self, listener: Callable[[str, Any], None]) -> None:
        self._listeners.append(listener)

    # ---- writing -----------------------------------------------------------------
    def coerce(self, key: str, value: Any) -> Any:
        """Convert a value to the type of the setting's default; raise SettingsError naming the key."""
        spec = self._specs.get(key)
        if spec is None:
            raise SettingsError(f"unknown setting {key!r}")
        default = spec.default
        try:
            if isinstance(default, bool):
                if isinstance(value, str):
                    if value.lower() not in ("true", "false", "1", "0"):
                        raise ValueError(value)
                    value = value.lower() in ("true", "1")
                value = bool(value)
            elif isinstance(default, int):
                value = int(value)
            elif isinstance(default, float):
                value = float(value)
            elif isinstance(default, list):
                value = [str(v).strip() for v in value.split(",")] if isinstance(value, str) else list(value)
            elif isinstance(default, str):
                value = "" if value is None else str(value)
        except (TypeError, ValueError):
            raise SettingsError(f"{key}: {value!r} is not a valid {type(default).__name__}") from None
        if spec.choices is not None and value not in spec.choices:
            raise SettingsError(f"{key}: {value!r} is not one of {', '.join(map(str, spec.choices))}")
        return value

    def update(self, changes: dict[str, Any], *, save: bool = True) -> list[str]:
        """Validate all values, write them to the file, then apply them; returns the keys that changed.

        Raises SettingsError for a bad value and SettingsSaveError when the file cannot be written; either
        way nothing changed.
        """
        with self._lock:
            coerced = {k: self.coerce(k, v) for k, v in changes.items()}
            changed = [k for k, v in coerced.items() if self.get(k) != v]
            values = {**self._values, **coerced}
            if save and changed:
                self._write(values)
            self._values = values
        for key in changed:
            for listener in self._listeners:
                listener(key, coerced[key])
        return changed

    def load(self) -> None:
        with self._lock:
            self._values = {}
            if not self.path.exists():
                return
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if not isinstance(data, dict):
                    raise ValueError("top level is not an object")
            except (OSError, ValueError) as exc:
                bad = self.path.with_suffix(self.path.suffix + ".bad")
                os.replace(self.path, bad)
                self.load_warning = f"{self.path.name} was unreadable ({exc}); moved to {bad.name}, using defaults"
                log.warning(self.load_warning)
                return
            self._values = data

    def save(self) -> None:
        """Write the settings to the file; raises SettingsSaveError when that fails."""
        with self._lock:
            self._write(self._values)

    def _write(self, values: dict[str, Any]) -> None:
        try:
            write_json_atomic(self.path, values)
        except (OSError, TypeError, ValueError) as exc:  # TypeError/ValueError: a value JSON cannot hold
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SettingsSaveError(f"could not save settings to {self.path}: {why}; "
                                    "nothing was changed") from None
