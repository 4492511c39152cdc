"""The Optimizations settings fold into the MemoryPolicy (dtype, channels-last, VAE tricks, compile), flags
that force float32 still win, and the policy's log line shows each choice."""
from __future__ import annotations

import pytest

from modules.devices import GiB, DeviceFlags, DeviceInfo, choose_policy
from modules.performance.options import PerformanceOptions, adjust_policy
from modules.settings import Settings

CPU = DeviceInfo()
AMPERE = DeviceInfo("cuda", "RTX 3090", 0, 24 * GiB, 23 * GiB, supports_bf16=True)
TURING = DeviceInfo("cuda", "RTX 2080", 0, 8 * GiB, 7 * GiB, supports_bf16=False)


def policy(device, options=PerformanceOptions(), flags=DeviceFlags(), family="sd1"):
    return adjust_policy(choose_policy(device, flags, family), options, device, flags)


def test_automatic_everything_is_todays_policy():
    for device in (CPU, AMPERE, TURING):
        for flags in (DeviceFlags(), DeviceFlags(medvram=True), DeviceFlags(no_half=True)):
            today = choose_policy(device, flags, "sd1")
            adjusted = policy(device, flags=flags)
            assert (adjusted.dtype, adjusted.vae_dtype, adjusted.channels_last, adjusted.vae_slicing) == \
                (today.dtype, today.vae_dtype, today.channels_last, today.vae_slicing)
            assert adjusted.compile_mode == ""


@pytest.mark.parametrize("device, choice, flags, expected", [
    (AMPERE, "bfloat16", DeviceFlags(), ("bfloat16", "bfloat16")),
    (AMPERE, "bfloat16", DeviceFlags(no_half_vae=True), ("bfloat16", "float32")),
    (AMPERE, "float32", DeviceFlags(), ("float32", "float32")),
    (TURING, "bfloat16", DeviceFlags(), ("float16", "float16")),  # no fast bf16 before compute 8.0
    (AMPERE, "bfloat16", DeviceFlags(no_half=True), ("float32", "float32")),  # --no-half wins
    (AMPERE, "float16", DeviceFlags(precision="full"), ("float32", "float32")),
    (CPU, "bfloat16", DeviceFlags(), ("bfloat16", "bfloat16")),  # allowed on the CPU when chosen
    (CPU, "float16", DeviceFlags(), ("float32", "float32")),  # refused on the CPU
    (CPU, "Automatic", DeviceFlags(), ("float32", "float32")),  # the CPU default stays float32
])
def test_precision_setting(device, choice, flags, expected):
    chosen = policy(device, PerformanceOptions(dtype=choice), flags)
    assert (chosen.dtype, chosen.vae_dtype) == expected


def test_a_refused_precision_says_why():
    assert any("--no-half" in w for w in policy(AMPERE, PerformanceOptions(dtype="float16"),
                                                 DeviceFlags(no_half=True)).warnings)
    assert any("CPU" in w for w in policy(CPU, PerformanceOptions(dtype="float16")).warnings)


def test_channels_last_and_vae_settings_override_the_automatic_choice():
    assert policy(CPU, PerformanceOptions(channels_last="On")).channels_last
    assert not policy(AMPERE, PerformanceOptions(channels_last="Off")).channels_last
    assert policy(AMPERE).channels_last  # Automatic: on CUDA
    forced = policy(CPU, PerformanceOptions(vae_tiling="On", vae_slicing="On"))
    assert forced.vae_tiling and forced.vae_slicing
    assert not policy(AMPERE, PerformanceOptions(vae_slicing="Off"), family="sdxl").vae_slicing


def test_tiling_is_automatic_under_offload_and_for_large_images_on_a_gpu():
    assert policy(AMPERE, flags=DeviceFlags(medvram=True)).vae_tiling
    assert policy(AMPERE, flags=DeviceFlags(lowvram=True)).vae_tiling
    assert not policy(AMPERE).vae_tiling and policy(AMPERE).vae_tiling_above == 1024
    assert policy(CPU).vae_tiling_above == 0  # CPUs have the RAM; no seams
    assert policy(AMPERE, PerformanceOptions(vae_tiling="Off")).vae_tiling_above == 0


def test_the_log_line_shows_each_option():
    line = policy(AMPERE, PerformanceOptions(compile_unet=True, compile_mode="max-autotune", dtype="bfloat16",
                                            vae_tiling="On")).summary()
    for text in ("bfloat16", "channels-last", "VAE tiling", "torch.compile max-autotune", "precision setting"):
        assert text in line, line


def test_options_come_from_the_settings(tmp_path):
    settings = Settings(tmp_path / "config.json")
    assert PerformanceOptions.from_settings(settings.get) == PerformanceOptions()
    settings.update({"unet_compile": True, "unet_compile_mode": "reduce-overhead", "opt_channelslast": "On",
                     "sd_dtype": "bfloat16", "sd_vae_tiling": "Off", "sd_vae_slicing": "On"})
    assert PerformanceOptions.from_settings(settings.get) == PerformanceOptions(
        compile_unet=True, compile_mode="reduce-overhead", channels_last="On", dtype="bfloat16",
        vae_tiling="Off", vae_slicing="On")
    assert {s.key for s in settings.specs() if s.section == "optimizations"} >= {
        "token_merging_ratio", "token_merging_ratio_hr", "unet_compile", "sd_dtype", "opt_channelslast"}
