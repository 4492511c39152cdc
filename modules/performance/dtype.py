"""The precision setting: float16, bfloat16 or float32 for the models, on top of the automatic choice.

bfloat16 has float32's range, so it does not overflow where float16 does (SDXL's VAE), but only recent
CUDA cards (compute capability 8.0+) run it fast; on older cards the setting falls back to float16. A CPU runs
float32 by default; bfloat16 there is allowed when chosen (measured in docs/performance.md), float16 is not
(most CPU kernels lack it or run it slowly). Flags that force float32 win over the setting.
"""
from __future__ import annotations

from modules.devices import DeviceFlags, DeviceInfo, MemoryPolicy

CHOICES = ("Automatic", "float16", "bfloat16", "float32")


def dtype_choice(policy: MemoryPolicy, choice: str, device: DeviceInfo, flags: DeviceFlags,
                 reasons: list[str], warnings: list[str]) -> tuple[str, str]:
    """(model dtype, VAE dtype) for the setting `choice`; appends why to reasons/warnings."""
    if choice in ("Automatic", policy.dtype) or choice not in CHOICES:
        return policy.dtype, policy.vae_dtype
    if flags.no_half or flags.precision == "full":
        warnings.append(f"precision setting {choice} ignored: --no-half/--precision full keep float32")
        return policy.dtype, policy.vae_dtype
    dtype = choice
    on_cpu = policy.device == "cpu"
    if on_cpu and dtype == "float16":
        warnings.append("float16 is not supported on the CPU: float32")
        return policy.dtype, policy.vae_dtype
    if dtype == "bfloat16" and not on_cpu and device.kind == "cuda" and not device.supports_bf16:
        warnings.append(f"{device.name} has no fast bfloat16: float16")
        dtype = "float16"
    reasons.append(f"precision setting: {dtype}")
    vae_dtype = "float32" if flags.no_half_vae else dtype
    return dtype, vae_dtype
