"""Request checks done before any model work: each bad value raises one UserInputError naming its field."""
from __future__ import annotations

from modules.types import INPAINTING_FILL, RESIZE_MODES, GenerationRequest, UserInputError

MIN_SIZE, MAX_SIZE = 64, 4096
MAX_STEPS = 1000
MAX_BATCH_SIZE = 64
MAX_BATCH_COUNT = 1000
MAX_CFG = 100.0


def check_size(value: int, field: str, *, allow_zero: bool = False) -> None:
    """Pixel sizes are multiples of 8 in 64..4096 (the VAE works on 8x8 blocks)."""
    if allow_zero and value == 0:
        return
    if not MIN_SIZE <= value <= MAX_SIZE:
        raise UserInputError(f"{value} is outside {MIN_SIZE}..{MAX_SIZE} pixels", field=field)
    if value % 8:
        raise UserInputError(f"{value} is not a multiple of 8 (try {round(value / 8) * 8 or 8})", field=field)


def check_range(value: float, low: float, high: float, field: str) -> None:
    """`low <= value <= high`, else a UserInputError for `field`."""
    if value is None or not low <= value <= high:
        raise UserInputError(f"{value} is outside {low:g}..{high:g}", field=field)


def validate_request(request: GenerationRequest) -> None:
    """Check sizes, steps, batch sizes, guidance and strengths of any mode; raise on the first bad field."""
    # 1. Image size and sampling.
    check_size(request.width, "width")
    check_size(request.height, "height")
    check_range(request.steps, 1, MAX_STEPS, "steps")
    check_range(request.batch_size, 1, MAX_BATCH_SIZE, "batch_size")
    check_range(request.n_iter, 1, MAX_BATCH_COUNT, "n_iter")
    check_range(request.cfg_scale, 0.0, MAX_CFG, "cfg_scale")
    check_range(request.subseed_strength, 0.0, 1.0, "subseed_strength")
    check_range(request.clip_skip, 1, 12, "clip_skip")
    if request.eta is not None:
        check_range(request.eta, 0.0, 1.0, "eta")
    for field in ("seed_resize_from_w", "seed_resize_from_h"):
        value = getattr(request, field)
        if value > 0:
            check_size(value, field)
    # 2. Second passes.
    if request.mode == "img2img" or request.enable_hr:
        check_range(request.denoising_strength, 0.0, 1.0, "denoising_strength")
    if request.enable_hr:
        check_range(request.hr_scale, 1.0, 8.0, "hr_scale")
        check_range(request.hr_second_pass_steps, 0, MAX_STEPS, "hr_second_pass_steps")
        if request.hr_cfg_scale is not None:
            check_range(request.hr_cfg_scale, 0.0, MAX_CFG, "hr_cfg_scale")
    if request.refiner_checkpoint:
        check_range(request.refiner_switch_at, 0.01, 0.99, "refiner_switch_at")
    # 3. img2img and inpaint settings.
    if request.mode == "img2img":
        if not request.init_images:
            raise UserInputError("img2img needs an input image", field="init_images")
        check_range(request.resize_mode, 0, len(RESIZE_MODES) - 1, "resize_mode")
        check_range(request.inpainting_fill, 0, len(INPAINTING_FILL) - 1, "inpainting_fill")
        check_range(request.inpainting_mask_invert, 0, 1, "inpainting_mask_invert")
        check_range(request.mask_blur, 0, 256, "mask_blur")
        check_range(request.inpaint_full_res_padding, 0, 1024, "inpaint_full_res_padding")
