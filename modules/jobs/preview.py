"""Cheap live previews: latents -> RGB by one linear map per latent family, no VAE decode.

The SD VAEs' 4 latent channels are close to a linear mix of colour, so a 4x3 matrix gives a recognisable
(blurry, slightly off-colour) picture for the cost of one small matmul. The coefficients are the publicly
known approximate values fitted by the community for SD1.x latents (SD2 shares that VAE) and for SDXL
latents; they apply to the latents as the sampler sees them (already multiplied by the VAE scaling factor).

The preview is latent-sized: one pixel per latent cell (1/8 of the output for real SD VAEs). `scale`
enlarges it by an integer factor with nearest-neighbour resampling, so a UI can ask for the output size
(scale 8) without paying for a decode; browsers can equally scale the small image with CSS.
"""
from __future__ import annotations

import math

import torch
from PIL import Image

# Rows are latent channels 0..3, columns R, G, B; results land roughly in [-1, 1].
SD1_LATENT_RGB: tuple[tuple[float, float, float], ...] = (
    (0.298, 0.207, 0.208),
    (0.187, 0.286, 0.173),
    (-0.158, 0.189, 0.264),
    (-0.184, -0.271, -0.473),
)
SDXL_LATENT_RGB: tuple[tuple[float, float, float], ...] = (
    (0.3920, 0.4054, 0.4549),
    (-0.2634, -0.0196, 0.0653),
    (0.0568, 0.1687, -0.0755),
    (-0.3112, -0.2359, -0.2076),
)
LATENT_RGB_FACTORS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "sd1": SD1_LATENT_RGB,
    "sdxl": SDXL_LATENT_RGB,
}


def resolve_latent_family(name: str) -> str:
    """Map a model family or architecture name ("sd15", "sd2-v", "sdxl-base", ...) to "sd1" or "sdxl"."""
    key = (name or "").lower()
    if key.startswith("sdxl"):
        return "sdxl"
    if key.startswith(("sd1", "sd2")):
        # SD2 kept SD1's VAE, so its latents share SD1's colour mix.
        return "sd1"
    raise ValueError(f"no latent preview for model family {name!r} (known: sd1, sd2, sdxl)")


def latents_to_rgb_on_device(latents: torch.Tensor, latent_family: str = "sd1") -> torch.Tensor:
    """(B, 4, h, w) latents -> (B, h, w, 3) uint8 RGB on the latents' device; raises ValueError for other shapes.

    Only queues a few small kernels on a GPU (no sync), so the sampler's worker can call it at a preview step
    and leave the copy to the CPU to whoever reads the preview."""
    if latents.ndim != 4 or latents.shape[1] != 4:
        raise ValueError(f"latent preview needs (batch, 4, h, w) latents, got {tuple(latents.shape)}")
    factors = LATENT_RGB_FACTORS[resolve_latent_family(latent_family)]
    # float32 on the latents' own device: the matmul is tiny, and only the small result crosses to the CPU.
    matrix = torch.tensor(factors, dtype=torch.float32, device=latents.device)
    with torch.no_grad():
        rgb = torch.einsum("bchw,cr->bhwr", latents.detach().float(), matrix)
        return ((rgb + 1.0) * 127.5).clamp(0, 255).round().to(torch.uint8)


def latents_to_rgb(latents: torch.Tensor, latent_family: str = "sd1") -> torch.Tensor:
    """(B, 4, h, w) latents -> (B, h, w, 3) uint8 RGB on the CPU; raises ValueError for other shapes."""
    return latents_to_rgb_on_device(latents, latent_family).cpu()


def tile_grid(rgb: torch.Tensor) -> torch.Tensor:
    """(B, h, w, 3) -> one (rows*h, cols*w, 3) image, cols = ceil(sqrt(B)), empty cells black."""
    count, height, width, _ = rgb.shape
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    grid = torch.zeros((rows * height, cols * width, 3), dtype=rgb.dtype)
    for index in range(count):
        row, col = divmod(index, cols)
        grid[row * height:(row + 1) * height, col * width:(col + 1) * width] = rgb[index]
    return grid


def rgb_to_preview(rgb: torch.Tensor, scale: int = 1) -> Image.Image:
    """(B, h, w, 3) uint8 RGB (any device) -> one PIL preview: cells in a grid, enlarged `scale` times."""
    if scale < 1:
        raise ValueError(f"preview scale must be an integer >= 1, got {scale}")
    image = Image.fromarray(tile_grid(rgb.cpu()).numpy())  # (H, W, 3) uint8 is RGB
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    return image


def latents_to_preview(latents: torch.Tensor, latent_family: str = "sd1", scale: int = 1) -> Image.Image:
    """A batch of latents as one RGB preview: latent-sized cells (x `scale`, integer >= 1) in a grid."""
    if scale < 1:
        raise ValueError(f"preview scale must be an integer >= 1, got {scale}")
    return rgb_to_preview(latents_to_rgb_on_device(latents, latent_family), scale)
