"""TAESD live previews: A1111's decoder files in models/VAE-approx load into diffusers' DecoderTiny and run."""
from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderTiny
from safetensors.torch import save_file

from modules.jobs.preview import latents_to_preview
from modules.jobs.progress import JobContext
from modules.jobs.taesd import PreviewDecoders, find_taesd_decoder


@pytest.fixture(scope="module")
def tiny_vae() -> AutoencoderTiny:
    torch.manual_seed(0)
    vae = AutoencoderTiny().eval()  # random weights in TAESD's shape (~1 M decoder parameters)
    return vae


def a1111_names(vae: AutoencoderTiny) -> dict[str, torch.Tensor]:
    # TAESD's own Sequential starts with a weightless clamp: DecoderTiny's layers.N is item N+1 there.
    out = {}
    for key, value in vae.decoder.state_dict().items():
        index, rest = key.removeprefix("layers.").split(".", 1)
        out[f"{int(index) + 1}.{rest}"] = value.clone().contiguous()
    return out


def test_taesd_setting_decodes_previews_with_the_file_in_vae_approx(tmp_path, tiny_vae):
    save_file(a1111_names(tiny_vae), str(tmp_path / "taesd_decoder.safetensors"))
    latents = torch.randn(1, 4, 4, 6)
    with torch.no_grad():
        expected = ((tiny_vae.decode(latents).sample + 1) * 127.5).clamp(0, 255).round().to(torch.uint8)
    rgb = PreviewDecoders(tmp_path, "TAESD")(latents, "sd15")
    assert rgb.shape == (1, 32, 48, 3)
    assert torch.equal(rgb, expected.permute(0, 2, 3, 1))

    ctx = JobContext("j", preview_every_n_steps=1, preview_decoder=PreviewDecoders(tmp_path, "TAESD"))
    ctx.step(0, latents)
    assert ctx.snapshot().preview.size == (48, 32)  # output-sized, not latent-sized


def test_pth_and_sdxl_names_and_fallback_to_the_cheap_map(tmp_path, tiny_vae):
    torch.save(a1111_names(tiny_vae), tmp_path / "taesdxl_decoder.pth")
    assert find_taesd_decoder(tmp_path, "sdxl") == tmp_path / "taesdxl_decoder.pth"
    assert find_taesd_decoder(tmp_path, "sd1") is None
    latents = torch.randn(1, 4, 4, 4)
    assert PreviewDecoders(tmp_path, "TAESD")(latents, "sdxl-base").shape == (1, 32, 32, 3)
    # No SD1 file, or another preview type: the cheap latent->RGB map, latent-sized.
    for kind, family in (("TAESD", "sd15"), ("Approx cheap", "sdxl"), ("Approx NN", "sdxl")):
        ctx = JobContext("j", preview_every_n_steps=1, preview_decoder=PreviewDecoders(tmp_path, kind))
        ctx.step(0, latents, latent_family=family)
        assert ctx.snapshot().preview.tobytes() == latents_to_preview(latents, family).tobytes()
