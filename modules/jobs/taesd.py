"""TAESD live previews: the tiny autoencoder's decoder (diffusers' DecoderTiny) on the sampler's latents.

As A1111's "TAESD" preview type: the decoder weights are `models/VAE-approx/taesd_decoder.*` (SD1/SD2)
and `taesdxl_decoder.*` (SDXL), .safetensors or .pth. Those files name the layers of TAESD's original
`nn.Sequential`, whose item 0 is a clamp layer with no weights; diffusers' DecoderTiny does that clamp in
`forward`, so item N there is `layers.N-1` here. Files saved from diffusers' AutoencoderTiny
(`decoder.layers.*`) load too. TAESD works on the latents as the sampler sees them (VAE-scaled).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

TAESD_FILES: dict[str, tuple[str, ...]] = {
    "sd1": ("taesd_decoder.safetensors", "taesd_decoder.pth"),
    "sdxl": ("taesdxl_decoder.safetensors", "taesdxl_decoder.pth"),
}


def find_taesd_decoder(folder: Path, latent_family: str) -> Path | None:
    """The decoder file for "sd1" or "sdxl" latents in `folder` (models/VAE-approx), or None."""
    for name in TAESD_FILES.get(latent_family, ()):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def decoder_state_dict(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """TAESD's `N.weight` names (or AutoencoderTiny's `decoder.layers.N.weight`) -> DecoderTiny's names."""
    out = {}
    for key, value in raw.items():
        if key.startswith("decoder.layers."):
            out[key.removeprefix("decoder.")] = value
            continue
        found = re.match(r"^(\d+)\.(.+)$", key)
        if found is None:
            raise ValueError(f"not a TAESD decoder file: unexpected key {key!r}")
        out[f"layers.{int(found.group(1)) - 1}.{found.group(2)}"] = value
    return out


def load_taesd_decoder(path: Path) -> torch.nn.Module:
    """A DecoderTiny (TAESD's architecture, 4 latent channels -> RGB in [-1, 1]) with the file's weights."""
    from diffusers import AutoencoderTiny

    decoder = AutoencoderTiny().decoder  # the default config is TAESD's (SD and SDXL alike)
    decoder.load_state_dict(decoder_state_dict(_read_state_dict(path)))
    return decoder.eval().requires_grad_(False)


def taesd_to_rgb_on_device(decoder: torch.nn.Module, latents: torch.Tensor) -> torch.Tensor:
    """(B, 4, h, w) latents -> (B, 8h, 8w, 3) uint8 on the latents' device; only queues kernels on a GPU."""
    import torch

    param = next(decoder.parameters())
    if param.device != latents.device:
        decoder.to(latents.device)
    with torch.no_grad():
        image = decoder(latents.detach().to(dtype=param.dtype))  # [-1, 1]
        rgb = ((image.float() + 1.0) * 127.5).clamp(0, 255).round().to(torch.uint8)
    return rgb.permute(0, 2, 3, 1)


class PreviewDecoders:
    """The preview a job makes from its latents, per A1111's `show_progress_type` setting.

    "TAESD" decodes with the TAESD decoder when its file is in `folder` (loaded on first use, kept here);
    every other type, and TAESD without its file, uses the cheap latent->RGB map ("Approx cheap";
    "Approx NN" and "Full" have no model of ours yet). Owned by the AppContext, one per app.
    """

    def __init__(self, folder: Path, kind: str = "Approx NN"):
        self.folder = Path(folder)
        self.kind = kind
        self._decoders: dict[str, torch.nn.Module] = {}

    def __call__(self, latents: torch.Tensor, latent_family: str) -> torch.Tensor:
        from modules.jobs.preview import latents_to_rgb_on_device, resolve_latent_family

        family = resolve_latent_family(latent_family)
        if self.kind == "TAESD":
            decoder = self._decoder(family)
            if decoder is not None:
                return taesd_to_rgb_on_device(decoder, latents)
        return latents_to_rgb_on_device(latents, family)

    def _decoder(self, family: str) -> torch.nn.Module | None:
        if family not in self._decoders:
            path = find_taesd_decoder(self.folder, family)
            if path is None:
                return None
            self._decoders[family] = load_taesd_decoder(path)
        return self._decoders[family]
