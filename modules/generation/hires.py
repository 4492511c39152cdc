"""Hires fix: the second-pass size and sampler, and the latent and pixel upscalers between the passes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    import torch

from modules.generation.validation import check_size
from modules.types import GenerationRequest, UserInputError

SAME_SAMPLER, SAME_SCHEDULER = "Use same sampler", "Use same scheduler"
# A1111 latent upscale modes -> (torch interpolate mode, antialias).
LATENT_UPSCALERS: dict[str, tuple[str, bool]] = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
# Pixel upscalers. "None" still has to reach the target size: A1111 then resizes with Lanczos too.
PIXEL_UPSCALERS: dict[str, Image.Resampling] = {
    "Lanczos": Image.Resampling.LANCZOS,
    "Nearest": Image.Resampling.NEAREST,
    "None": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class HiresPlan:
    """Second-pass sizes in pixels: upscale to (upscale_w, upscale_h), then centre-crop to (width, height)."""

    width: int
    height: int
    upscale_w: int
    upscale_h: int
    upscaler: str
    steps: int  # second-pass steps that run: hr_second_pass_steps, or the first pass's (0 at strength 0)
    num_inference_steps: int  # the stretched schedule handed to diffusers: int(steps / strength)
    strength: float  # handed to diffusers so that its int(num_inference_steps * strength) is `steps`

    @property
    def latent(self) -> bool:
        return self.upscaler in LATENT_UPSCALERS


def upscaler_names(upscalers=None) -> list[str]:
    """Hires upscaler names in A1111's order (latent modes first), then the model upscalers of `upscalers`
    (the app's postprocessing.UpscalerRegistry: Real-ESRGAN, spandrel model files, extensions' rows)."""
    names = [*LATENT_UPSCALERS, *PIXEL_UPSCALERS]
    if upscalers is not None:
        names += [n for n in upscalers.names() if n not in names]
    return names


def _round8(value: float) -> int:
    return max(8, int(value) // 8 * 8)


def plan_hires(request: GenerationRequest, upscalers=None) -> HiresPlan:
    """Target size from hr_scale or hr_resize_x/y (one zero = keep aspect ratio; both = fill and crop).
    `upscalers` (an UpscalerRegistry) adds its model upscalers to the names hr_upscaler may take."""
    w, h = request.width, request.height
    rx, ry = request.hr_resize_x, request.hr_resize_y
    names = upscaler_names(upscalers)
    if request.hr_upscaler not in names:
        if upscalers is not None and request.hr_upscaler in upscalers.unavailable:
            upscalers.get(request.hr_upscaler, field="hr_upscaler")  # raises with why it is unavailable
        raise UserInputError(f"unknown upscaler {request.hr_upscaler!r}; choose one of: {', '.join(names)}",
                             field="hr_upscaler")
    if rx == 0 and ry == 0:
        target_w, target_h = _round8(w * request.hr_scale), _round8(h * request.hr_scale)
        fields = ("hr_scale",) * 2
    elif ry == 0:
        target_w, target_h, fields = _round8(rx), _round8(rx * h / w), ("hr_resize_x",) * 2
    elif rx == 0:
        target_w, target_h, fields = _round8(ry * w / h), _round8(ry), ("hr_resize_y",) * 2
    else:
        target_w, target_h, fields = _round8(rx), _round8(ry), ("hr_resize_x", "hr_resize_y")
    check_size(target_w, fields[0])
    check_size(target_h, fields[1])
    # Cover the target keeping the first pass's aspect ratio; the crop removes the overhang.
    cover = max(target_w / w, target_h / h)
    up_w, up_h = max(target_w, _round8(w * cover + 7)), max(target_h, _round8(h * cover + 7))
    # A1111 hands the hires pass an explicit step count, and img2img then always runs exactly that many:
    # the last `steps` of a schedule stretched by the strength (the img2img_fix_steps rule).
    # Imported on use: sampler_params pulls in diffusers, which the UI and API (they import this module for
    # the upscaler names) must not import at start-up; through the libraries' lock, as on the worker.
    from modules.pipelines.libraries import import_model_libraries

    import_model_libraries()
    from modules.sampler_params import img2img_schedule

    total, strength, steps = img2img_schedule(request.hr_second_pass_steps or request.steps,
                                              request.denoising_strength, fix_steps=True)
    return HiresPlan(target_w, target_h, up_w, up_h, request.hr_upscaler, steps, total, strength)


def _crop_centre_latents(latents: torch.Tensor, th: int, tw: int) -> torch.Tensor:
    _, _, lh, lw = latents.shape
    top, left = (lh - th) // 2, (lw - tw) // 2
    return latents[:, :, top:top + th, left:left + tw]


def upscale_latents(latents: torch.Tensor, plan: HiresPlan, factor: int = 8) -> torch.Tensor:
    """Resize latents (B, C, h, w) to the plan's size with its latent mode, then centre-crop;
    `factor` is the VAE's pixels per latent cell."""
    import torch.nn.functional as F

    mode, antialias = LATENT_UPSCALERS[plan.upscaler]
    size = (plan.upscale_h // factor, plan.upscale_w // factor)
    kwargs = {"antialias": antialias} if mode in ("bilinear", "bicubic") else {}
    # interpolate in float32: half-precision bicubic is not implemented on every device
    out = F.interpolate(latents.float(), size=size, mode=mode, **kwargs).to(latents.dtype)
    return _crop_centre_latents(out, plan.height // factor, plan.width // factor)


def upscale_image(image: Image.Image, plan: HiresPlan, upscalers=None) -> Image.Image:
    """Resize an image to the plan's size with its pixel upscaler (a resampler, or a model upscaler of
    `upscalers`), then centre-crop."""
    size = (plan.upscale_w, plan.upscale_h)
    if plan.upscaler in PIXEL_UPSCALERS or upscalers is None:
        resized = image.resize(size, PIXEL_UPSCALERS[plan.upscaler])
    else:
        resized = upscalers.upscale(image, upscalers.get(plan.upscaler, field="hr_upscaler"), size)
    left, top = (plan.upscale_w - plan.width) // 2, (plan.upscale_h - plan.height) // 2
    return resized.crop((left, top, left + plan.width, top + plan.height))


def resolve_hires_sampler(request: GenerationRequest, sampler, schedule):
    """(sampler, schedule, warnings) of the second pass; "Use same ..." keeps the first pass's choice."""
    from modules.samplers import resolve_sampler

    same_sampler = request.hr_sampler_name in ("", SAME_SAMPLER)
    same_schedule = request.hr_scheduler in ("", SAME_SCHEDULER)
    if same_sampler and same_schedule:
        return sampler, schedule, []
    try:
        return resolve_sampler(sampler.name if same_sampler else request.hr_sampler_name,
                               schedule.name if same_schedule else request.hr_scheduler)
    except UserInputError as exc:
        field = "hr_scheduler" if exc.field == "scheduler" else "hr_sampler_name"
        raise UserInputError(str(exc).removeprefix(f"{exc.field}: "), field=field) from None
