"""Typed boundaries of the core: what a generation asks for and what it gives back.

Field names are A1111's (the API's `StableDiffusionProcessing*` names), so the API, the UI forms,
infotext and extensions all speak the same words. Defaults here are the UI defaults; the API layer
applies A1111's API defaults (steps 50, ...) on its side.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from PIL import Image

Mode = Literal["txt2img", "img2img"]

# img2img resize modes, in A1111's order (the API sends the index).
RESIZE_MODES = ("Just resize", "Crop and resize", "Resize and fill", "Just resize (latent upscale)")
# Masked content ("inpainting_fill") in A1111's order.
INPAINTING_FILL = ("fill", "original", "latent noise", "latent nothing")


@dataclass(frozen=True)
class GenerationRequest:
    """Everything one generation job needs. Sizes in pixels, strengths in [0, 1]."""

    mode: Mode = "txt2img"
    prompt: str = ""
    negative_prompt: str = ""
    styles: tuple[str, ...] = ()
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = 0.0
    seed_resize_from_h: int = -1
    seed_resize_from_w: int = -1
    sampler_name: str = "DPM++ 2M"
    scheduler: str = "Automatic"
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 20
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    clip_skip: int = 1
    tiling: bool = False
    eta: float | None = None
    # Sampler parameters (A1111's p.s_churn, ...): None = the setting of the same name.
    s_churn: float | None = None
    s_tmin: float | None = None
    s_tmax: float | None = None
    s_noise: float | None = None
    # A1111's p.s_min_uncond (Negative Guidance minimum sigma): None = the setting s_min_uncond.
    s_min_uncond: float | None = None
    # hires fix (txt2img)
    enable_hr: bool = False
    hr_scale: float = 2.0
    hr_upscaler: str = "Latent"
    hr_second_pass_steps: int = 0
    hr_resize_x: int = 0
    hr_resize_y: int = 0
    hr_sampler_name: str = "Use same sampler"
    hr_scheduler: str = "Use same scheduler"
    hr_prompt: str = ""
    hr_negative_prompt: str = ""
    hr_cfg_scale: float | None = None
    denoising_strength: float = 0.7
    # refiner
    refiner_checkpoint: str = ""
    refiner_switch_at: float = 0.8
    # img2img / inpaint
    init_images: tuple[Image.Image, ...] = ()
    resize_mode: int = 0
    image_cfg_scale: float | None = None
    mask: Image.Image | None = None
    mask_blur: int = 4
    mask_blur_x: int | None = None
    mask_blur_y: int | None = None
    inpainting_fill: int = 1
    inpaint_full_res: bool = False
    inpaint_full_res_padding: int = 32
    inpainting_mask_invert: int = 0
    initial_noise_multiplier: float | None = None  # None = the initial_noise_multiplier setting
    # model selection for this job only (title, name or hash); empty = the loaded model
    sd_model_checkpoint: str = ""
    sd_vae: str = ""
    # per-job settings overrides (A1111 override_settings), e.g. {"CLIP_stop_at_last_layers": 2}
    override_settings: dict[str, Any] = field(default_factory=dict)
    # False: the overrides (and the job's model and VAE) stay in effect after the job, as in A1111
    override_settings_restore_afterwards: bool = True
    # always-on extension arguments keyed by extension name (A1111 alwayson_scripts)
    extensions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # script selected in the script dropdown and its args
    script_name: str = ""
    script_args: tuple[Any, ...] = ()
    # Per-image prompts and seeds, when a script decided them (A1111's p.all_prompts, p.all_seeds):
    # empty = derived from prompt/seed (styles applied, image i gets seed + i). When set they are final:
    # styles are not applied again, and there is one entry per image (batch_size * n_iter).
    all_prompts: tuple[str, ...] = ()
    all_negative_prompts: tuple[str, ...] = ()
    all_seeds: tuple[int, ...] = ()
    all_subseeds: tuple[int, ...] = ()
    save_images: bool = True
    do_not_save_grid: bool = False

    def with_changes(self, **changes: Any) -> "GenerationRequest":
        """A copy with some fields replaced (the request itself never mutates)."""
        return replace(self, **changes)

    @property
    def total_images(self) -> int:
        return max(1, self.batch_size) * max(1, self.n_iter)


@dataclass
class GenerationResult:
    """Images of one job, in order, with the per-image seeds, prompts and infotexts."""

    images: list[Image.Image] = field(default_factory=list)
    all_prompts: list[str] = field(default_factory=list)
    all_negative_prompts: list[str] = field(default_factory=list)
    all_seeds: list[int] = field(default_factory=list)
    all_subseeds: list[int] = field(default_factory=list)
    infotexts: list[str] = field(default_factory=list)
    saved_paths: list[str] = field(default_factory=list)
    grid: Image.Image | None = None
    job_timestamp: str = ""
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return self.all_seeds[0] if self.all_seeds else -1

    @property
    def info(self) -> str:
        return self.infotexts[0] if self.infotexts else ""

    @property
    def grid_info(self) -> str:
        """The grid's infotext: a script's own (X/Y/Z plot puts it in extra), else the first image's."""
        return self.extra.get("grid_infotext") or self.info


class UserInputError(ValueError):
    """A bad value the user can fix. `field` names the request field; the message is shown verbatim."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{self.field}: {msg}" if self.field and not msg.startswith(self.field) else msg
