"""A1111's automatic VAE precision: a float16 VAE that decodes to NaNs is retried in float32."""
from __future__ import annotations

import copy

import numpy as np
import torch

from modules.generation.passes import decode_latents


class _Pipe:
    """Just the parts decode_latents uses, around a private copy of the tiny VAE."""

    def __init__(self, pipe):
        self.vae = copy.deepcopy(pipe.vae)
        self.image_processor = pipe.image_processor
        self.device = torch.device("cpu")
        self._execution_device = torch.device("cpu")


def test_nan_in_half_precision_retries_in_float32(tiny_sd15_pipe):
    pipe = _Pipe(tiny_sd15_pipe)
    pipe.vae.to(torch.float16)
    pipe.vae.register_to_config(force_upcast=False)  # an SD1 VAE: no planned upcast, so the retry must act
    # Simulate the fp16 overflow that real SD VAEs show: NaNs whenever the decoder runs in half precision.
    pipe.vae.decoder.register_forward_hook(
        lambda module, args, out: torch.full_like(out, float("nan")) if out.dtype == torch.float16 else out)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    (image,) = decode_latents(pipe, latents)
    assert pipe.vae.dtype == torch.float32  # stays float32 for the rest of the session
    pixels = np.asarray(image)
    assert pixels.std() > 0  # a real image, not the black square NaNs turn into


def test_float32_vae_is_not_touched(tiny_sd15_pipe):
    pipe = _Pipe(tiny_sd15_pipe)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    first = np.asarray(decode_latents(pipe, latents)[0])
    assert pipe.vae.dtype == torch.float32
    assert np.array_equal(first, np.asarray(decode_latents(pipe, latents)[0]))
