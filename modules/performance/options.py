"""The performance settings as one value, and how they change the MemoryPolicy a model is placed with.

`choose_policy` (modules/devices.py) picks what the hardware and flags call for; `adjust_policy` then applies
the user's choices from the Optimizations settings. Flags that force float32 (--no-half, --precision full)
still win over a dtype setting, so the command line keeps its A1111 meaning.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from modules.devices import DeviceFlags, DeviceInfo, MemoryPolicy
from modules.performance.channels_last import channels_last_choice
from modules.performance.dtype import dtype_choice
from modules.performance.vae import tiling_threshold, vae_choices

# Settings that act when a model is placed: changing one reloads the current model (between jobs).
LOAD_SETTINGS = ("unet_compile", "unet_compile_mode", "opt_channelslast", "sd_dtype", "sd_vae_tiling",
                 "sd_vae_slicing")


@dataclass(frozen=True)
class PerformanceOptions:
    """The Optimizations settings: "Automatic" means what choose_policy picked for the hardware."""

    compile_unet: bool = False
    compile_mode: str = "default"
    compile_backend: str = "inductor"  # not a setting: tests compile with "eager" (no C++ build)
    channels_last: str = "Automatic"  # Automatic | On | Off
    dtype: str = "Automatic"  # Automatic | float16 | bfloat16 | float32
    vae_tiling: str = "Automatic"  # Automatic | On | Off
    vae_slicing: str = "Automatic"

    @classmethod
    def from_settings(cls, get: Callable[[str], Any]) -> "PerformanceOptions":
        return cls(compile_unet=bool(get("unet_compile")), compile_mode=str(get("unet_compile_mode")),
                   channels_last=str(get("opt_channelslast")), dtype=str(get("sd_dtype")),
                   vae_tiling=str(get("sd_vae_tiling")), vae_slicing=str(get("sd_vae_slicing")))


def adjust_policy(policy: MemoryPolicy, options: PerformanceOptions, device: DeviceInfo,
                  flags: DeviceFlags = DeviceFlags()) -> MemoryPolicy:
    """`policy` with the user's performance choices applied; each change adds a reason (or a warning)."""
    reasons, warnings = list(policy.reasons), list(policy.warnings)
    dtype, vae_dtype = dtype_choice(policy, options.dtype, device, flags, reasons, warnings)
    channels_last = channels_last_choice(policy, options.channels_last, reasons)
    slicing, tiling = vae_choices(policy, options.vae_slicing, options.vae_tiling, reasons)
    compile_mode = options.compile_mode if options.compile_unet else ""
    if compile_mode:
        reasons.append(f"torch.compile of the UNet ({compile_mode})")
    return replace(policy, dtype=dtype, vae_dtype=vae_dtype, channels_last=channels_last, vae_slicing=slicing,
                   vae_tiling=tiling, vae_tiling_above=tiling_threshold(policy, options.vae_tiling),
                   compile_mode=compile_mode, compile_backend=options.compile_backend,
                   reasons=tuple(reasons), warnings=tuple(warnings))
