"""VAE slicing and tiling: settings that force them, and tiling of large images only, on a GPU.

Slicing decodes a batch one image at a time (the same pixels, less peak memory). Tiling decodes in
overlapping tiles with blended seams (pixels change slightly where tiles meet, so it is used only where the
memory is needed): always under --lowvram/--medvram, and on a GPU for images wider or taller than 1024.
"""
from __future__ import annotations

from typing import Any

from modules.devices import MemoryPolicy

CHOICES = ("Automatic", "On", "Off")
# Above this side (pixels) a GPU decode is tiled automatically (SDXL's native 1024x1024 decodes whole).
LARGE_IMAGE_SIDE = 1024


def vae_choices(policy: MemoryPolicy, slicing: str, tiling: str, reasons: list[str]) -> tuple[bool, bool]:
    """(slicing, tiling) at load: "Automatic" keeps the policy's choice, plus tiling whenever it offloads."""
    use_slicing = {"On": True, "Off": False}.get(slicing, policy.vae_slicing)
    use_tiling = {"On": True, "Off": False}.get(tiling, policy.vae_tiling or policy.offload != "none")
    for name, choice in (("slicing", slicing), ("tiling", tiling)):
        if choice in ("On", "Off"):
            reasons.append(f"VAE {name} {choice.lower()} (setting)")
    return use_slicing, use_tiling


def tiling_threshold(policy: MemoryPolicy, tiling: str) -> int:
    """Image side (pixels) above which decodes are tiled though tiling is off: on a GPU, tiling Automatic."""
    return LARGE_IMAGE_SIDE if tiling == "Automatic" and policy.device != "cpu" else 0


def tile_large_images(vae: Any, side: int) -> None:
    """Tile decodes of images wider or taller than `side` pixels only, in tiles of that size.

    diffusers' AutoencoderKL tiles when a side exceeds its tile size; raising the tile size to `side` keeps
    every smaller image's decode whole (unchanged pixels) and bounds the memory of larger ones.
    """
    if side <= 0 or getattr(vae, "use_tiling", True) or not hasattr(vae, "tile_sample_min_size"):
        return
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    vae.enable_tiling()
    vae.tile_sample_min_size = side
    vae.tile_latent_min_size = side // factor
