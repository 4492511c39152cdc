"""The memory policy chosen for fake devices: every VRAM class, both model families, every override."""
from __future__ import annotations

import pytest

from modules.devices import DeviceFlags, DeviceInfo, GiB, choose_policy

CPU = DeviceInfo("cpu", "CPU")


def cuda(gib: float, **kw) -> DeviceInfo:
    return DeviceInfo("cuda", f"Fake {gib} GiB", 0, int(gib * GiB), int(gib * GiB * 0.9), **kw)


NO_FLAGS = DeviceFlags()


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_cpu_only_runs_float32_on_cpu_without_offload(family):
    p = choose_policy(CPU, NO_FLAGS, family)
    assert (p.device, p.dtype, p.vae_dtype, p.offload) == ("cpu", "float32", "float32", "none")
    assert any("no GPU" in r for r in p.reasons)


@pytest.mark.parametrize(
    "gib, family, offload",
    [
        (4, "sd1", "model"),
        (4, "sdxl", "sequential"),
        (8, "sd1", "none"),
        (8, "sdxl", "model"),
        (12, "sd1", "none"),
        (12, "sdxl", "none"),
        (24, "sd1", "none"),
        (24, "sdxl", "none"),
        (2, "sd1", "sequential"),
    ],
)
def test_vram_classes_choose_offload(gib, family, offload):
    p = choose_policy(cuda(gib), NO_FLAGS, family)
    assert p.device == "cuda:0"
    assert p.dtype == "float16"
    assert p.offload == offload
    assert any(f"{gib:.1f} GiB" in r for r in p.reasons), p.reasons


MiB = 1024**2

# Totals as torch.cuda reports them on real cards (MiB): always a little under the size on the box.
REAL_CARDS = {
    "GT 1030 2 GB": 1998,
    "GTX 1060 3 GB": 3019,
    "GTX 1650 4 GB": 3904,
    "RTX 2060 6 GB": 5926,
    "RTX 3060 Laptop 6 GB": 5804,
    "RTX 3070 8 GB": 7973,
    "RTX 3050 8 GB": 7782,
    "RTX 3080 10 GB": 10010,
    "GTX 1080 Ti 11 GB": 11172,
    "RTX 3060 12 GB": 12036,
    "RTX 4060 Ti 16 GB": 15944,
    "RTX 4090 24 GB": 24210,
}


def real(name: str) -> DeviceInfo:
    total = REAL_CARDS[name] * MiB
    return DeviceInfo("cuda", name, 0, total, int(total * 0.9))


@pytest.mark.parametrize(
    "card, nominal",
    [("GT 1030 2 GB", 2), ("GTX 1060 3 GB", 3), ("GTX 1650 4 GB", 4), ("RTX 2060 6 GB", 6),
     ("RTX 3060 Laptop 6 GB", 6), ("RTX 3070 8 GB", 8), ("RTX 3050 8 GB", 8), ("RTX 3080 10 GB", 10),
     ("GTX 1080 Ti 11 GB", 11), ("RTX 3060 12 GB", 12), ("RTX 4060 Ti 16 GB", 16), ("RTX 4090 24 GB", 24)],
)
def test_reported_totals_map_to_the_size_on_the_box(card, nominal):
    assert real(card).nominal_vram_gib == nominal


def test_unusual_totals_are_not_rounded_up_far():
    # A 5.0 GiB slice (MIG, a VM) is not a 6 GB card: no class within the margin, used as reported.
    assert DeviceInfo("cuda", "slice", 0, 5 * GiB, 0).nominal_vram_gib == 5
    assert DeviceInfo("cuda", "slice", 0, int(9.0 * GiB), 0).nominal_vram_gib == 9.0


# The README table, card by card, at every boundary (sd1: 3 and 6 GB; SDXL: 6 and 12 GB).
@pytest.mark.parametrize(
    "card, sd1, sdxl",
    [
        ("GT 1030 2 GB", "sequential", "sequential"),
        ("GTX 1060 3 GB", "model", "sequential"),
        ("GTX 1650 4 GB", "model", "sequential"),
        ("RTX 2060 6 GB", "none", "model"),
        ("RTX 3060 Laptop 6 GB", "none", "model"),
        ("RTX 3070 8 GB", "none", "model"),
        ("RTX 3050 8 GB", "none", "model"),
        ("GTX 1080 Ti 11 GB", "none", "model"),
        ("RTX 3060 12 GB", "none", "none"),
        ("RTX 4060 Ti 16 GB", "none", "none"),
        ("RTX 4090 24 GB", "none", "none"),
    ],
)
def test_real_cards_get_the_policy_of_their_class(card, sd1, sdxl):
    assert choose_policy(real(card), NO_FLAGS, "sd1").offload == sd1
    assert choose_policy(real(card), NO_FLAGS, "sdxl").offload == sdxl


def test_reason_names_both_the_reported_total_and_the_class():
    p = choose_policy(real("RTX 3060 12 GB"), NO_FLAGS, "sdxl")
    assert any("11.8 GiB" in r and "12 GB card" in r for r in p.reasons), p.reasons
    assert "12 GB card" in real("RTX 3060 12 GB").describe()


def test_summary_says_device_policy_and_why():
    line = choose_policy(cuda(8), NO_FLAGS, "sdxl").summary()
    assert "cuda:0" in line and "medvram" in line and "8.0 GiB" in line


@pytest.mark.parametrize("tasks", [("all",), ("sd",)])
def test_use_cpu_moves_sd_to_cpu_even_on_a_big_gpu(tasks):
    p = choose_policy(cuda(24), DeviceFlags(use_cpu=tasks), "sd1")
    assert (p.device, p.dtype, p.offload) == ("cpu", "float32", "none")


def test_use_cpu_for_other_tasks_keeps_sd_on_gpu():
    p = choose_policy(cuda(24), DeviceFlags(use_cpu=("upscaler",)), "sd1")
    assert p.device == "cuda:0" and p.cpu_tasks == ("upscaler",)


def test_medvram_flag_overrides_big_card():
    assert choose_policy(cuda(24), DeviceFlags(medvram=True), "sd1").offload == "model"


def test_medvram_sdxl_only_affects_sdxl():
    flags = DeviceFlags(medvram_sdxl=True)
    assert choose_policy(cuda(24), flags, "sdxl").offload == "model"
    assert choose_policy(cuda(24), flags, "sd1").offload == "none"


def test_lowvram_wins_over_medvram():
    assert choose_policy(cuda(24), DeviceFlags(lowvram=True, medvram=True), "sd1").offload == "sequential"


def test_lowvram_on_cpu_is_ignored_with_a_warning():
    p = choose_policy(CPU, DeviceFlags(lowvram=True), "sd1")
    assert p.offload == "none" and p.warnings


def test_xformers_used_only_when_importable_on_cuda():
    assert choose_policy(cuda(24, xformers_available=True), DeviceFlags(xformers=True)).attention == "xformers"
    missing = choose_policy(cuda(24), DeviceFlags(xformers=True))
    assert missing.attention == "sdp" and "not importable" in missing.warnings[0]
    on_cpu = choose_policy(CPU, DeviceFlags(xformers=True))
    assert on_cpu.attention == "sdp" and "needs CUDA" in on_cpu.warnings[0]


def test_opt_sdp_attention_is_sdp():
    assert choose_policy(cuda(24), DeviceFlags(opt_sdp_attention=True)).attention == "sdp"


def test_no_half_is_float32_everywhere():
    p = choose_policy(cuda(24), DeviceFlags(no_half=True))
    assert (p.dtype, p.vae_dtype) == ("float32", "float32")


def test_no_half_vae_only_changes_vae():
    p = choose_policy(cuda(24), DeviceFlags(no_half_vae=True))
    assert (p.dtype, p.vae_dtype) == ("float16", "float32")


@pytest.mark.parametrize("precision, dtype", [("full", "float32"), ("half", "float16"), ("autocast", "float16")])
def test_precision_flag(precision, dtype):
    assert choose_policy(cuda(24), DeviceFlags(precision=precision)).dtype == dtype


def test_card_without_good_fp16_runs_float32_unless_forced_half():
    weak = cuda(6, supports_fp16=False)
    assert choose_policy(weak, NO_FLAGS).dtype == "float32"
    assert choose_policy(weak, DeviceFlags(precision="half")).dtype == "float16"


def test_device_id_is_used_in_the_torch_device():
    dev = DeviceInfo("cuda", "second card", 1, 24 * GiB, 20 * GiB)
    assert choose_policy(dev, NO_FLAGS).device == "cuda:1"


def test_mps_uses_half_and_attention_slicing_without_offload():
    p = choose_policy(DeviceInfo("mps", "Apple MPS"), NO_FLAGS, "sdxl")
    assert (p.device, p.dtype, p.offload, p.attention_slicing) == ("mps", "float16", "none", True)


def test_device_flags_from_parsed_flags():
    from modules.flags import parse_flags

    flags = parse_flags(["--medvram-sdxl", "--no-half-vae", "--use-cpu", "all"], environ={})
    df = DeviceFlags.from_flags(flags)
    assert df.medvram_sdxl and df.no_half_vae and df.use_cpu == ("all",)
