"""Adapters against an independent reference: each pair merged by hand into a copy of the model
(W + mult * up @ down * alpha / rank), compared on the UNet's and text encoders' outputs for fixed inputs."""
from __future__ import annotations

import copy

import pytest
import torch

from tests.fixtures.loras import kohya_lora, merge_by_hand


def outputs(pipe) -> list[torch.Tensor]:
    """UNet noise prediction and text encoder states for fixed inputs (what a generation is made of)."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.tensor([[49406, 320, 1000, 2000, 49407] + [49407] * 72])
    out = []
    with torch.no_grad():
        encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if getattr(pipe, "text_encoder_2", None) else [])
        states = [enc(ids, output_hidden_states=True).hidden_states[-2] for enc in encoders]
        out += states
        context = torch.cat(states, dim=-1)
        latents = torch.randn((1, 4, 8, 8), generator=gen)
        extra = {}
        if getattr(pipe, "text_encoder_2", None) is not None:
            pooled = torch.randn((1, pipe.text_encoder_2.config.projection_dim), generator=gen)
            extra["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": torch.tensor([[64., 64, 0, 0, 64, 64]])}
        out.append(pipe.unet(latents, 10, encoder_hidden_states=context, **extra).sample)
    return out


def close(a: list[torch.Tensor], b: list[torch.Tensor], tol: float = 1e-4) -> bool:
    return all(torch.allclose(x, y, atol=tol, rtol=1e-4) for x, y in zip(a, b))


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def sd15(tiny_sd15_pipe):
    return copy.deepcopy(tiny_sd15_pipe)


@pytest.fixture(scope="module")
def sdxl(tiny_sdxl_pipe):
    return copy.deepcopy(tiny_sdxl_pipe)


def test_kohya_lora_matches_weights_merged_by_hand_and_weight_zero_is_exact(lora_pkg, sd15, tiny_sd15_pipe):
    engine = lora_pkg["engine"]
    sd = kohya_lora(tiny_sd15_pipe, seed=1, strength=0.3)
    base = outputs(sd15)
    cache = engine.AdapterCache.for_pipe(sd15)
    adapter = cache.get(("a", 0, 0), lambda: dict(sd), 4)
    for te, unet in ((0.7, 0.7), (1.0, 0.0), (0.0, 1.0), (-0.5, 1.5)):
        cache.activate([engine.Use(adapter, te, unet)])
        got = outputs(sd15)
        cache.deactivate()
        assert close(got, outputs(merge_by_hand(tiny_sd15_pipe, sd, te_mult=te, unet_mult=unet))), (te, unet)
        assert not same(got, base)
    cache.activate([engine.Use(adapter, 0.0, 0.0)])
    assert same(outputs(sd15), base)  # bit for bit
    cache.deactivate()
    assert same(outputs(sd15), base)


def test_two_loras_add_up_as_the_reference_does(lora_pkg, sd15, tiny_sd15_pipe):
    engine = lora_pkg["engine"]
    one, two = kohya_lora(tiny_sd15_pipe, seed=11, strength=0.3), kohya_lora(tiny_sd15_pipe, seed=12, strength=0.3, rank=2, ldm=True)
    cache = engine.AdapterCache.for_pipe(sd15)
    a = cache.get(("one", 0, 0), lambda: dict(one), 4)
    b = cache.get(("two", 0, 0), lambda: dict(two), 4)
    cache.activate([engine.Use(a, 0.6, 0.6), engine.Use(b, 1.0, 0.5)])
    got = outputs(sd15)
    cache.deactivate()
    reference = merge_by_hand(merge_by_hand(tiny_sd15_pipe, one, te_mult=0.6, unet_mult=0.6), two, te_mult=1.0,
                              unet_mult=0.5, ldm=True)
    assert close(got, outputs(reference))


def test_sdxl_kohya_lora_with_ldm_names_and_both_text_encoders(lora_pkg, sdxl, tiny_sdxl_pipe):
    engine = lora_pkg["engine"]
    sd = kohya_lora(tiny_sdxl_pipe, seed=5, strength=0.3, ldm=True)
    assert any(k.startswith("lora_unet_input_blocks_") for k in sd) and any(k.startswith("lora_te2_") for k in sd)
    base = outputs(sdxl)
    cache = engine.AdapterCache.for_pipe(sdxl)
    adapter = cache.get(("xl", 0, 0), lambda: dict(sd), 4)
    assert set(adapter.weights_components) == {"unet", "text_encoder", "text_encoder_2"}
    cache.activate([engine.Use(adapter, 1.0, 0.8)])
    got = outputs(sdxl)
    cache.deactivate()
    assert close(got, outputs(merge_by_hand(tiny_sdxl_pipe, sd, te_mult=1.0, unet_mult=0.8, ldm=True)))
    assert same(outputs(sdxl), base)


def test_fused_is_the_merge_and_unfusing_gives_the_base_back_within_rounding(lora_pkg, sd15, tiny_sd15_pipe):
    engine = lora_pkg["engine"]
    sd = kohya_lora(tiny_sd15_pipe, seed=21, strength=0.3)
    base = outputs(sd15)
    cache = engine.AdapterCache.for_pipe(sd15)
    adapter = cache.get(("f", 0, 0), lambda: dict(sd), 4)
    cache.activate([engine.Use(adapter, 0.8, 0.8)], fuse=True)
    got = outputs(sd15)
    cache.deactivate()
    assert close(got, outputs(merge_by_hand(tiny_sd15_pipe, sd, te_mult=0.8, unet_mult=0.8)))
    assert close(outputs(sd15), base, tol=1e-5)


def test_least_recently_used_adapter_leaves_and_its_layers_go_back_to_plain_modules(lora_pkg, tiny_sd15_pipe):
    engine = lora_pkg["engine"]
    pipe = copy.deepcopy(tiny_sd15_pipe)
    plain_types = {n: type(m) for n, m in pipe.unet.named_modules()}
    cache = engine.AdapterCache.for_pipe(pipe)
    first = cache.get(("1", 0, 0), lambda: kohya_lora(tiny_sd15_pipe, seed=1), 1)
    cache.get(("2", 0, 0), lambda: kohya_lora(tiny_sd15_pipe, seed=2, te=False), 1)
    assert cache.loaded() == [("2", 0, 0)] and cache.loads == 2
    assert all(first.name not in getattr(m, "lora_A", {}) for m in pipe.unet.modules())
    assert all(first.name not in getattr(m, "lora_A", {}) for m in pipe.text_encoder.modules())
    # the text encoder had only the evicted adapter: its modules are the plain ones again
    assert not any(hasattr(m, "lora_A") for m in pipe.text_encoder.modules())
    cache.get(("2", 0, 0), lambda: pytest.fail("a cached adapter is not read again"), 1)
    assert {n: type(m) for n, m in pipe.unet.named_modules() if n in plain_types and ".lora" not in n
            and "base_layer" not in n}.keys() <= plain_types.keys()


def test_a_lora_that_does_not_fit_is_refused_before_anything_is_injected(lora_pkg, tiny_sd15_pipe, tiny_sdxl_pipe):
    convert, engine = lora_pkg["convert"], lora_pkg["engine"]
    pipe = copy.deepcopy(tiny_sd15_pipe)
    cache = engine.AdapterCache.for_pipe(pipe)
    xl_unet_only = kohya_lora(tiny_sdxl_pipe, te=False)  # other cross-attention width: shapes differ
    with pytest.raises(convert.LoraFormatError, match="shape"):
        cache.get(("xl", 0, 0), lambda: dict(xl_unet_only), 4)
    unknown = {"lora_unet_nowhere_to_q.lora_down.weight": torch.zeros(2, 32),
               "lora_unet_nowhere_to_q.lora_up.weight": torch.zeros(32, 2)}
    with pytest.raises(convert.LoraFormatError, match="not in the loaded model"):
        cache.get(("u", 0, 0), lambda: dict(unknown), 4)
    oft = {"lora_unet_down_blocks_1_attentions_0_proj_in.oft_blocks": torch.zeros(4, 2, 2)}
    with pytest.raises(convert.LoraFormatError, match="OFT"):
        cache.get(("h", 0, 0), lambda: dict(oft), 4)
    assert not any(hasattr(m, "lora_A") for m in pipe.unet.modules()) and cache.loads == 0


def test_peft_format_and_locon_convs_load_like_kohya(lora_pkg, sd15, tiny_sd15_pipe):
    engine = lora_pkg["engine"]
    kohya = kohya_lora(tiny_sd15_pipe, seed=31, strength=0.3, te=False)
    # the same pairs in diffusers/PEFT spelling (unet.<module>.lora_A.weight), alpha baked in
    peft_sd = {}
    for key, down in kohya.items():
        if key.endswith(".lora_down.weight"):
            stem = key.removesuffix(".lora_down.weight")
            name = next(n for n, _ in tiny_sd15_pipe.unet.named_modules() if n.replace(".", "_") == stem[len("lora_unet_"):])
            scale = float(kohya[f"{stem}.alpha"]) / down.shape[0]
            peft_sd[f"unet.{name}.lora_A.weight"] = down
            peft_sd[f"unet.{name}.lora_B.weight"] = kohya[f"{stem}.lora_up.weight"] * scale
    # LoCon: a 3x3 resnet conv gets a conv pair (kohya names, down 3x3, up 1x1)
    conv = tiny_sd15_pipe.unet.get_submodule("down_blocks.0.resnets.0.conv1")
    g = torch.Generator().manual_seed(3)
    locon = {"lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight": torch.randn(2, conv.in_channels, 3, 3, generator=g) * 0.05,
             "lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight": torch.randn(conv.out_channels, 2, 1, 1, generator=g),
             "lora_unet_down_blocks_0_resnets_0_conv1.alpha": torch.tensor(2.0)}
    cache = engine.AdapterCache.for_pipe(sd15)
    results = []
    for key, sd in (("k", kohya), ("p", peft_sd), ("c", locon)):
        adapter = cache.get((key, 0, 0), lambda sd=sd: dict(sd), 4)
        cache.activate([engine.Use(adapter, 1.0, 1.0)])
        results.append(outputs(sd15))
        cache.deactivate()
    assert close(results[0], results[1], tol=1e-5)
    assert close(results[2], outputs(merge_by_hand(tiny_sd15_pipe, locon, te_mult=1.0, unet_mult=1.0)))


def test_sequential_offload_is_refused_with_a_reason_not_a_crash(lora_pkg, tiny_sd15_pipe):
    convert, engine = lora_pkg["convert"], lora_pkg["engine"]
    pipe = copy.deepcopy(tiny_sd15_pipe)
    pipe.unet.conv_in.to("meta")  # what accelerate's sequential offload leaves on the module
    cache = engine.AdapterCache.for_pipe(pipe)
    with pytest.raises(convert.LoraFormatError, match="sequential CPU offload"):
        cache.get(("o", 0, 0), lambda: pytest.fail("nothing is read"), 4)


def test_sd2_kohya_lora_matches_the_hand_merge(lora_pkg):
    from tests.fixtures.tiny_models import build_tiny_sd2_pipeline

    engine = lora_pkg["engine"]
    pristine = build_tiny_sd2_pipeline()
    pipe = copy.deepcopy(pristine)
    sd = kohya_lora(pristine, seed=41, strength=0.3, ldm=True)  # linear proj_in/proj_out, 64-wide context
    cache = engine.AdapterCache.for_pipe(pipe)
    adapter = cache.get(("sd2", 0, 0), lambda: dict(sd), 4)
    cache.activate([engine.Use(adapter, 0.9, 0.9)])
    got = outputs(pipe)
    cache.deactivate()
    assert close(got, outputs(merge_by_hand(pristine, sd, te_mult=0.9, unet_mult=0.9, ldm=True)))
    assert same(outputs(pipe), outputs(pristine))
