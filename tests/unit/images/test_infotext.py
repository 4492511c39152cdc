"""Infotext writing and parsing: the shared A1111 cases, exact layouts, and write -> parse round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from modules.images.infotext import (
    build_generation_params,
    format_infotext,
    format_value,
    infotext_to_request_fields,
    parse_infotext,
    split_sampler_name,
    uses_emphasis,
)
from modules.types import GenerationRequest

# A copy of the team's case file kept in the repo, so a clone alone runs its tests.
CASES_FILE = Path(__file__).resolve().parents[2] / "data" / "cases" / "infotext.json"
CASES = json.loads(CASES_FILE.read_text(encoding="utf-8"))["cases"]
MODEL = {"seed": 1234, "subseed": 99, "model_name": "v1-5-pruned-emaonly", "model_hash": "6ce0161689"}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_shared_cases(case):
    assert parse_infotext(case["infotext"]) == case["expected"]


def test_typical_txt2img_layout_matches_a1111():
    request = GenerationRequest(
        prompt="a photo of a cat, (masterpiece:1.2)", negative_prompt="blurry, lowres", width=512, height=768
    )
    params = build_generation_params(request, schedule_type="Karras", version="v1.10.1", **MODEL)
    text = format_infotext(request.prompt, request.negative_prompt, params)
    assert text == CASES[0]["infotext"]


def test_format_quotes_drops_empty_and_omits_empty_negative():
    params = {
        "Steps": 20,
        "Lora hashes": "a: 1, b: 2",
        "Note": 'say "hi"',
        "Empty": "",
        "None": None,
        "CFG scale": 7.5,
        "Whole": 2.0,
        "Flag": True,
    }
    text = format_infotext("p", "", params)
    assert text == (
        'p\nSteps: 20, Lora hashes: "a: 1, b: 2", Note: "say \\"hi\\"", CFG scale: 7.5, Whole: 2, Flag: True'
    )
    assert format_infotext("p", "n", {}) == "p\nNegative prompt: n"


def test_params_order_and_conditional_keys():
    plain = build_generation_params(GenerationRequest(), **MODEL)
    assert list(plain) == [
        "Steps",
        "Sampler",
        "Schedule type",
        "CFG scale",
        "Seed",
        "Size",
        "Model hash",
        "Model",
        "Version",
    ]
    request = GenerationRequest(
        clip_skip=2,
        tiling=True,
        subseed_strength=0.3,
        seed_resize_from_w=256,
        seed_resize_from_h=320,
        enable_hr=True,
        hr_second_pass_steps=10,
        hr_upscaler="Latent",
        hr_sampler_name="Euler",
        hr_scheduler="Karras",
        hr_prompt="more detail",
        hr_negative_prompt="blur",
        hr_cfg_scale=5.0,
        refiner_checkpoint="sdxl-refiner",
        refiner_switch_at=0.8,
    )
    params = build_generation_params(
        request,
        vae_name="vae-ft-mse",
        vae_hash="735e4c3a44",
        extra={"Lora hashes": "x: abc", "Emphasis": "No norm", "Steps": 30},
        **MODEL,
    )
    assert list(params) == [
        "Steps",
        "Sampler",
        "Schedule type",
        "CFG scale",
        "Seed",
        "Size",
        "Model hash",
        "Model",
        "VAE hash",
        "VAE",
        "Variation seed",
        "Variation seed strength",
        "Seed resize from",
        "Denoising strength",
        "Clip skip",
        "Tiling",
        "Hires upscale",
        "Hires steps",
        "Hires upscaler",
        "Hires sampler",
        "Hires schedule type",
        "Hires CFG Scale",
        "Hires prompt",
        "Hires negative prompt",
        "Refiner",
        "Refiner switch at",
        "Lora hashes",
        "Emphasis",
        "Version",
    ]
    assert params["Steps"] == 30  # extras override in place
    assert (
        build_generation_params(request.with_changes(hr_resize_x=1024, hr_resize_y=768), **MODEL)[
            "Hires resize"
        ]
        == "1024x768"
    )


def test_img2img_inpaint_keys_follow_the_shared_case_order():
    mask = Image.new("L", (8, 8))
    request = GenerationRequest(
        mode="img2img",
        prompt="a red hat",
        sampler_name="Euler a",
        seed=5,
        denoising_strength=0.75,
        mask=mask,
        inpaint_full_res=True,
        inpainting_fill=0,
    )
    params = build_generation_params(
        request, schedule_type="Automatic", version="v1.10.1", **{**MODEL, "seed": 5}
    )
    assert format_infotext(request.prompt, "", params) == CASES[2]["infotext"]
    no_mask = build_generation_params(request.with_changes(mask=None, initial_noise_multiplier=1.1), **MODEL)
    assert (
        "Mask blur" not in no_mask and no_mask["Noise multiplier"] == 1.1 and "Denoising strength" in no_mask
    )


def test_our_version_string_triggers_no_backcompat_flags():
    text = format_infotext("a [b:c:0.5]", "", build_generation_params(GenerationRequest(), **MODEL))
    parsed = parse_infotext(text)
    assert "Old prompt editing timelines" not in parsed and "Downcast alphas_cumprod" not in parsed


ROUND_TRIP_REQUESTS = [
    GenerationRequest(),
    GenerationRequest(
        clip_skip=3,
        tiling=True,
        subseed_strength=0.25,
        seed_resize_from_w=320,
        seed_resize_from_h=448,
        enable_hr=True,
        hr_scale=1.5,
        hr_second_pass_steps=12,
        hr_upscaler="R-ESRGAN 4x+",
        hr_sampler_name="DPM++ 2M SDE",
        hr_scheduler="Exponential",
        hr_prompt="sharp, detailed: yes",
        hr_negative_prompt='no "blur"',
        hr_cfg_scale=4.5,
        denoising_strength=0.45,
        refiner_checkpoint="refiner [abc123]",
        refiner_switch_at=0.7,
    ),
    GenerationRequest(enable_hr=True, hr_resize_x=1024, hr_resize_y=1536, steps=35, cfg_scale=6.5, width=640),
    GenerationRequest(
        mode="img2img",
        mask=Image.new("L", (4, 4)),
        mask_blur=6,
        inpaint_full_res=True,
        inpaint_full_res_padding=48,
        inpainting_fill=2,
        inpainting_mask_invert=1,
        initial_noise_multiplier=0.9,
        image_cfg_scale=1.5,
        denoising_strength=0.6,
    ),
]


@pytest.mark.parametrize("request_", ROUND_TRIP_REQUESTS)
def test_every_emitted_field_round_trips(request_):
    params = build_generation_params(
        request_,
        vae_name="vae, with: comma",
        vae_hash="735e4c3a44",
        extra={"Lora hashes": "a: 1, b: 2", "TI hashes": "emb: 3"},
        **MODEL,
    )
    parsed = parse_infotext(format_infotext(request_.prompt or "x", "neg", params))
    for key, value in params.items():
        if key in ("Size", "Hires resize", "Seed resize from"):
            assert (parsed[f"{key}-1"], parsed[f"{key}-2"]) == tuple(value.split("x")), key
        else:
            assert parsed[key] == format_value(value), key

    fields = infotext_to_request_fields(parsed)
    rebuilt = GenerationRequest(
        **{k: v for k, v in fields.items() if k in GenerationRequest.__dataclass_fields__}
    )
    keep = {
        "prompt",
        "negative_prompt",
        "mask",
        "init_images",
        "sd_model_checkpoint",
        "sd_vae",
        "override_settings",
        "seed",
        "subseed",
    }
    # Only what the infotext carries must come back; unwritten fields fall back to their defaults anyway.
    for name in GenerationRequest.__dataclass_fields__:
        if name in fields and name not in keep:
            assert getattr(rebuilt, name) == getattr(request_, name), name
    assert fields["seed"] == 1234 and fields["sd_model_checkpoint"] == "6ce0161689"
    assert fields["sd_vae"] == "vae, with: comma"
    if request_.subseed_strength:
        assert fields["subseed"] == 99


def _line(text: str) -> str:
    return text.strip()


_lines = st.lists(
    st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=30).map(_line), min_size=1, max_size=4
)
# Parsing strips each line, drops leading blank lines and treats a "Negative prompt:" line as a boundary.
prompts = _lines.map("\n".join).filter(
    lambda p: (
        p == ""
        or (p.split("\n")[0] != "" and not any(ln.startswith("Negative prompt:") for ln in p.split("\n")))
    )
)
values = st.text(max_size=40)


@settings(max_examples=150, deadline=None)
@given(prompt=prompts, negative=prompts, model=values, hires_prompt=values, lora=values)
def test_round_trip_with_awkward_text(prompt, negative, model, hires_prompt, lora):
    request = GenerationRequest(
        prompt=prompt, negative_prompt=negative, enable_hr=True, hr_prompt=hires_prompt
    )
    params = build_generation_params(
        request, seed=1, subseed=2, model_name=model, model_hash="abc", extra={"Lora hashes": lora}
    )
    parsed = parse_infotext(format_infotext(prompt, negative, params))
    assert parsed["Prompt"] == prompt
    assert parsed["Negative prompt"] == negative
    assert parsed.get("Model") == (model or None)
    assert parsed.get("Lora hashes") == (lora or None)
    assert parsed["Hires prompt"] == (hires_prompt if hires_prompt and hires_prompt != prompt else "")
    assert parsed["Steps"] == "20" and parsed["Version"] == params["Version"]


def test_prompt_only_and_blank_lines():
    assert parse_infotext("a: b, c: d")["Prompt"] == "a: b, c: d"
    parsed = parse_infotext(
        "\n\n first \n\n second\nNegative prompt:  n1 \n n2\nSteps: 1, Seed: 2, Size: 3x4"
    )
    assert parsed["Prompt"] == "first\n\nsecond" and parsed["Negative prompt"] == "n1\nn2"


def test_old_first_pass_size_becomes_hires_resize():
    parsed = parse_infotext(
        "p\nSteps: 20, Seed: 1, Size: 1024x1024, First pass size: 0x0, Denoising strength: 0.7"
    )
    assert (parsed["Size-1"], parsed["Size-2"], parsed["Hires resize-1"], parsed["Hires resize-2"]) == (
        512,
        512,
        1024,
        1024,
    )


def test_request_fields_from_legacy_and_hires_texts():
    fields = infotext_to_request_fields(
        parse_infotext(
            "p\nSteps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 7, Size: 512x768, "
            "Denoising strength: 0.5, Hires upscale: 2, Hires upscaler: Latent, Tiling: True, "
            "Emphasis: No norm, Masked content: latent noise"
        )
    )
    assert fields["sampler_name"] == "DPM++ 2M" and fields["scheduler"] == "Karras"
    assert (fields["steps"], fields["cfg_scale"], fields["width"], fields["height"]) == (30, 7.5, 512, 768)
    assert fields["enable_hr"] is True and fields["hr_scale"] == 2.0 and fields["tiling"] is True
    assert fields["inpainting_fill"] == 2 and fields["override_settings"]["emphasis"] == "No norm"
    plain = infotext_to_request_fields(parse_infotext("p\nSteps: x, Sampler: Euler, Seed: 1, Size: 8x8"))
    assert plain["enable_hr"] is False and "steps" not in plain  # a broken value is skipped, not fatal
    assert split_sampler_name("Euler a", "Karras") == ("Euler a", "Karras")
    assert split_sampler_name("DPM++ 2M SDE Exponential", "Beta") == ("DPM++ 2M SDE", "Beta")


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("plain words", False),
        ("(a)", True),
        ("[a]", True),
        ("(a:1.0)", False),
        ("((a:1.0))", True),
        (r"\(escaped\)", False),
        ("()", False),
        ("a)", False),
        ("(open", True),
        ("[a:b:0.5]", True),
        ("[(balanced)]", False),
        ("x BREAK y", False),
    ],
)
def test_uses_emphasis(prompt, expected):
    assert uses_emphasis(prompt) is expected
