"""Apply a `MemoryPolicy` to a diffusers pipeline: the one place that moves models and picks tricks."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from modules.devices import MemoryPolicy, forget_execution_device
from modules.performance.vae import tile_large_images

if TYPE_CHECKING:
    import torch

# torch is imported where a pipeline is placed, not here: the pipeline manager imports this module while
# the server starts, and importing torch then would hold the first page back by seconds.
log = logging.getLogger(__name__)

DTYPE_NAMES = ("float32", "float16", "bfloat16")


def torch_dtype(name: str) -> torch.dtype:
    """'float16' -> torch.float16; raises KeyError for unknown names."""
    if name not in DTYPE_NAMES:
        raise KeyError(name)
    import torch

    return getattr(torch, name)


def apply_memory_policy(pipe, policy: MemoryPolicy) -> None:
    """Place `pipe` per the policy: dtype, device or offload, attention backend, VAE slicing/tiling."""
    import torch

    from modules.performance.compile import compile_unet

    dtype = torch_dtype(policy.dtype)
    forget_execution_device(pipe)  # placed anew: execution_device asks diffusers again
    # 1. Precision. The VAE may stay float32 (--no-half-vae, or SDXL's VAE that overflows in fp16).
    pipe.to(dtype=dtype)
    vae = getattr(pipe, "vae", None)
    if vae is not None and policy.vae_dtype != policy.dtype:
        vae.to(dtype=torch_dtype(policy.vae_dtype))

    # 2. Placement. Offload hooks move weights themselves, so the pipeline must stay on the CPU then.
    if policy.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=policy.device)
    elif policy.offload == "model":
        pipe.enable_model_cpu_offload(device=policy.device)
    else:
        pipe.to(policy.device)

    # 3. Attention backend. Diffusers uses PyTorch SDP by default; xformers only when asked and present.
    if policy.attention == "xformers":
        try:
            pipe.enable_xformers_memory_efficient_attention()
        except Exception as exc:  # a broken xformers build must not stop generation
            log.warning("xformers failed to enable (%s); using PyTorch SDP attention", exc)
    if policy.attention_slicing:
        pipe.enable_attention_slicing()

    # 4. VAE memory savers: slicing decodes a batch one image at a time, tiling decodes in tiles.
    if vae is not None:
        if policy.vae_slicing and hasattr(vae, "enable_slicing"):
            vae.enable_slicing()
        if policy.vae_tiling and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        if not policy.vae_tiling:  # images larger than the threshold still decode in tiles
            tile_large_images(vae, policy.vae_tiling_above)
    unet = getattr(pipe, "unet", None)
    if policy.channels_last and unet is not None:
        unet.to(memory_format=torch.channels_last)
    # 5. torch.compile of the UNet: compiled at its first call; a failure there falls back to eager.
    if policy.compile_mode and unet is not None:
        compile_unet(unet, policy.compile_mode, policy.compile_backend)
