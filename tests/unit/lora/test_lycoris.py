"""LyCORIS LoHa, LoKr and full-diff files against an independent reference: each module's dW rebuilt in full
from LyCORIS' definitions and merged by hand (W + mult * dW) into a copy of the model, on the UNet's
attention linears, 1x1 and 3x3 resnet convolutions (Tucker cores too) and the text encoder."""
from __future__ import annotations

import copy

import pytest
import torch

from tests.fixtures.loras import (LOKR_CONV_FORMS, LOKR_LINEAR_FORMS, kohya_lora, lycoris_delta, lycoris_lora,
                                  merge_by_hand, merge_lycoris_by_hand)
from tests.unit.lora.test_engine import close, outputs, same


@pytest.fixture(scope="module")
def sd15(tiny_sd15_pipe):
    return copy.deepcopy(tiny_sd15_pipe)


@pytest.fixture(scope="module")
def base(sd15):
    return outputs(sd15)


def kinds_in(sd: dict[str, torch.Tensor]) -> set[str]:
    return {k.rsplit(".", 1)[1] for k in sd}


@pytest.mark.parametrize("kind, alpha", [("loha", 1.0), ("lokr", 1.0), ("full", 0.0)])
def test_lycoris_kind_matches_the_hand_merge_and_weight_zero_is_the_base_bit_for_bit(
        lora_pkg, sd15, base, tiny_sd15_pipe, kind, alpha):
    engine = lora_pkg["engine"]
    sd = lycoris_lora(tiny_sd15_pipe, kind, seed=3, rank=2, alpha=alpha)
    if kind == "loha":
        assert {"hada_t1", "hada_w1_a"} <= kinds_in(sd)  # Tucker cores on half of the 3x3 convs
    if kind == "lokr":
        assert {"lokr_w1", "lokr_w1_a", "lokr_w2", "lokr_w2_a", "lokr_t2"} <= kinds_in(sd)
    cache = engine.AdapterCache.for_pipe(sd15)
    adapter = cache.get((kind, 0, 0), lambda: dict(sd), 4)
    assert set(adapter.weights_components) == {"unet", "text_encoder"}
    try:
        for te, unet in ((0.7, 1.0), (0.0, -0.5)):
            cache.activate([engine.Use(adapter, te, unet)])
            got = outputs(sd15)
            cache.deactivate()
            reference = merge_lycoris_by_hand(tiny_sd15_pipe, sd, te_mult=te, unet_mult=unet)
            assert close(got, outputs(reference)), (kind, te, unet)
            assert not same(got, base)
        cache.activate([engine.Use(adapter, 0.0, 0.0)])
        assert same(outputs(sd15), base)
        cache.deactivate()
        assert same(outputs(sd15), base)
    finally:
        cache.clear()


def test_sdxl_loha_with_both_text_encoders_matches_the_hand_merge(lora_pkg, tiny_sdxl_pipe):
    engine = lora_pkg["engine"]
    pipe = copy.deepcopy(tiny_sdxl_pipe)
    sd = lycoris_lora(tiny_sdxl_pipe, "loha", seed=6, rank=2, alpha=1.0, convs=False)  # convs: SD 1.x tests
    assert any(k.startswith("lora_te1_") for k in sd) and any(k.startswith("lora_te2_") for k in sd)
    base = outputs(pipe)
    cache = engine.AdapterCache.for_pipe(pipe)
    adapter = cache.get(("xl", 0, 0), lambda: dict(sd), 4)
    assert set(adapter.weights_components) == {"unet", "text_encoder", "text_encoder_2"}
    cache.activate([engine.Use(adapter, 0.8, 1.0)])
    got = outputs(pipe)
    cache.deactivate()
    assert close(got, outputs(merge_lycoris_by_hand(tiny_sdxl_pipe, sd, te_mult=0.8, unet_mult=1.0)))
    assert same(outputs(pipe), base)


@pytest.mark.parametrize("kind", ["loha", "lokr", "full"])
def test_every_module_and_factor_form_resolves_to_the_reference_delta(lora_pkg, tiny_sd15_pipe, kind):
    """Module by module (a wrong scale rule in one form cannot hide in a whole model's output): alpha 4 with
    rank 2 makes the factored forms' scale 2, while a LoKr with both factors full must stay at scale 1."""
    convert = lora_pkg["convert"]
    sd = lycoris_lora(tiny_sd15_pipe, kind, seed=5, rank=2, alpha=4.0)
    modules = {"unet": tiny_sd15_pipe.unet, "text_encoder": tiny_sd15_pipe.text_encoder}
    indexes = {c: convert.module_index(c, m) for c, m in modules.items()}
    weights = convert.resolve(dict(sd), indexes, modules)
    stems = {k.rsplit(".", 1)[0] for k in sd}
    assert sum(len(v) for v in weights.layers.values()) == len(stems)
    forms = set()
    for stem in stems:
        component, flat = ("unet", stem[10:]) if stem.startswith("lora_unet_") else ("text_encoder", stem[8:])
        name = indexes[component][flat]
        pair, weight = weights.layers[component][name], modules[component].get_submodule(name).weight
        got = pair.scale * (pair.up.flatten(1) @ pair.down.flatten(1))
        want = lycoris_delta(sd, stem, weight.shape).flatten(1)
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-4), stem
        forms.add((frozenset(k.rsplit(".", 1)[1] for k in sd if k.startswith(stem + ".")), weight.dim() == 4
                   and weight.shape[-1] == 3))
    if kind == "lokr":  # every form was met: 4 for linears and 1x1 convs, 3 for 3x3 convs
        counts = (sum(not c for _, c in forms), sum(c for _, c in forms))
        assert counts == (len(LOKR_LINEAR_FORMS), len(LOKR_CONV_FORMS))


def test_loha_with_a_lora_fused_and_unfused(lora_pkg, base, tiny_sd15_pipe):
    engine = lora_pkg["engine"]
    sd15 = copy.deepcopy(tiny_sd15_pipe)  # unfusing leaves rounding in the weights: not the shared copy
    loha = lycoris_lora(tiny_sd15_pipe, "loha", seed=7, rank=3, alpha=1.5)
    lora = kohya_lora(tiny_sd15_pipe, seed=8, strength=0.3)
    cache = engine.AdapterCache.for_pipe(sd15)
    a = cache.get(("loha", 0, 0), lambda: dict(loha), 4)
    b = cache.get(("lora", 0, 0), lambda: dict(lora), 4)
    reference = outputs(merge_by_hand(merge_lycoris_by_hand(tiny_sd15_pipe, loha, te_mult=0.8, unet_mult=0.5),
                                      lora, te_mult=1.0, unet_mult=1.0))
    try:
        for fuse in (False, True):
            cache.activate([engine.Use(a, 0.8, 0.5), engine.Use(b, 1.0, 1.0)], fuse=fuse)
            got = outputs(sd15)
            cache.deactivate()
            assert close(got, reference), fuse
        assert close(outputs(sd15), base, tol=1e-5)  # unfused: the base within rounding
    finally:
        cache.clear()
    assert not any(hasattr(m, "lora_A") for m in sd15.unet.modules())


@pytest.mark.parametrize("tail, kind", [("oft_blocks", "OFT"), ("oft_diag", "OFT"), ("w_norm", "GLoRA"),
                                        ("dora_scale", "DoRA"), ("diff_b", "full diff with bias"),
                                        ("on_input", "IA3")])
def test_kinds_still_unsupported_are_refused_naming_the_kind(lora_pkg, sd15, tail, kind):
    convert, engine = lora_pkg["convert"], lora_pkg["engine"]
    pipe = sd15
    lora = kohya_lora(pipe, te=False, rank=2)
    stem = next(k for k in lora if k.endswith(".lora_down.weight")).removesuffix(".lora_down.weight")
    sd = {k: v for k, v in lora.items() if k.startswith(stem + ".")} | {f"{stem}.{tail}": torch.zeros(2, 2)}
    cache = engine.AdapterCache.for_pipe(pipe)
    with pytest.raises(convert.LoraFormatError, match=f"is a LyCORIS {kind} file"):
        cache.get(("x", 0, 0), lambda: dict(sd), 4)
    assert not any(hasattr(m, "lora_A") for m in pipe.unet.modules())


def test_a_loha_for_other_shapes_is_refused_before_anything_is_injected(lora_pkg, sd15, tiny_sd15_pipe):
    convert, engine = lora_pkg["convert"], lora_pkg["engine"]
    pipe = sd15
    sd = lycoris_lora(tiny_sd15_pipe, "loha", seed=9)
    stem = next(k.rsplit(".", 1)[0] for k in sd if "attn2_to_k" in k)
    sd[f"{stem}.hada_w1_b"] = torch.zeros(2, 48)  # another cross-attention width
    sd[f"{stem}.hada_w2_b"] = torch.zeros(2, 48)
    cache = engine.AdapterCache.for_pipe(pipe)
    with pytest.raises(convert.LoraFormatError, match="attn2_to_k"):
        cache.get(("bad", 0, 0), lambda: dict(sd), 4)
    assert not any(hasattr(m, "lora_A") for m in pipe.unet.modules()) and cache.loads == 0


def test_locon_with_a_cp_mid_core_matches_the_hand_merge(lora_pkg, sd15, base, tiny_sd15_pipe):
    """LoCon's CP form: 1x1 down, kxk `lora_mid`, 1x1 up; dW[o, n] = sum up[o, m] mid[m, j] down[j, n]."""
    engine = lora_pkg["engine"]
    g = torch.Generator().manual_seed(4)
    stem = "lora_unet_down_blocks_0_resnets_0_conv1"
    conv = tiny_sd15_pipe.unet.get_submodule("down_blocks.0.resnets.0.conv1")
    sd = {f"{stem}.lora_down.weight": torch.randn(3, conv.in_channels, 1, 1, generator=g) * 0.2,
          f"{stem}.lora_mid.weight": torch.randn(3, 3, 3, 3, generator=g) * 0.3,
          f"{stem}.lora_up.weight": torch.randn(conv.out_channels, 3, 1, 1, generator=g) * 0.2,
          f"{stem}.alpha": torch.tensor(1.5)}
    reference = copy.deepcopy(tiny_sd15_pipe)
    with torch.no_grad():
        delta = torch.einsum("om,mjhw,jn->onhw", sd[f"{stem}.lora_up.weight"].flatten(1),
                             sd[f"{stem}.lora_mid.weight"], sd[f"{stem}.lora_down.weight"].flatten(1))
        reference.unet.get_submodule("down_blocks.0.resnets.0.conv1").weight += 0.9 * 1.5 / 3 * delta
    cache = engine.AdapterCache.for_pipe(sd15)
    try:
        adapter = cache.get(("cp", 0, 0), lambda: dict(sd), 4)
        cache.activate([engine.Use(adapter, 1.0, 0.9)])
        got = outputs(sd15)
        cache.deactivate()
        assert close(got, outputs(reference))
        assert same(outputs(sd15), base)
    finally:
        cache.clear()
