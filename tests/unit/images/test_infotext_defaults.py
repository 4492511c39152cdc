"""Keys A1111's parser adds when a text lacks them: an empty text (an image without a `parameters` chunk)
gives exactly A1111's defaults, and a text that names some keys gets the rest."""
from __future__ import annotations

from modules.images.infotext import parse_infotext

# What A1111's parse_generation_parameters("") returns (behaviour read from its infotext_utils.py).
EMPTY = {
    "Prompt": "",
    "Negative prompt": "",
    "Clip skip": "1",
    "Hires resize-1": 0,
    "Hires resize-2": 0,
    "Hires sampler": "Use same sampler",
    "Hires schedule type": "Use same scheduler",
    "Hires checkpoint": "Use same checkpoint",
    "Hires prompt": "",
    "Hires negative prompt": "",
    "Mask mode": "Inpaint masked",
    "Masked content": "original",
    "Inpaint area": "Whole picture",
    "Masked area padding": 32,
    "RNG": "GPU",
    "Schedule type": "Automatic",
    "Schedule max sigma": 0,
    "Schedule min sigma": 0,
    "Schedule rho": 0,
    "VAE Encoder": "Full",
    "VAE Decoder": "Full",
    "FP8 weight": "Disable",
    "Refiner switch by sampling steps": False,
}


def test_an_empty_or_missing_text_gives_a1111s_defaults():
    assert parse_infotext("") == EMPTY
    assert parse_infotext("   \n  ") == EMPTY
    assert parse_infotext(None) == EMPTY  # no parameters chunk at all


def test_defaults_keep_their_types_and_order():
    assert list(parse_infotext("")) == list(EMPTY)
    assert [type(v) for v in parse_infotext("").values()] == [type(v) for v in EMPTY.values()]


def test_keys_the_text_has_are_not_replaced_by_defaults():
    text = "a cat\nSteps: 20, Sampler: Euler, Clip skip: 2, RNG: CPU, Masked area padding: 8"
    parsed = parse_infotext(text)
    assert (parsed["Clip skip"], parsed["RNG"], parsed["Masked area padding"]) == ("2", "CPU", "8")
    assert parsed["Hires sampler"] == "Use same sampler" and parsed["Prompt"] == "a cat"


def test_emphasis_in_the_negative_prompt_also_adds_emphasis_original():
    """A1111 looks at both prompts: attention syntax in either means the text was made with emphasis on."""
    line = "Steps: 20, Sampler: Euler, Seed: 1"
    assert parse_infotext(f"a cat\nNegative prompt: (blurry)\n{line}")["Emphasis"] == "Original"
    assert "Emphasis" not in parse_infotext(f"a cat\nNegative prompt: blurry\n{line}")
    kept = parse_infotext(f"a cat\nNegative prompt: (blurry)\n{line}, Emphasis: No norm")
    assert kept["Emphasis"] == "No norm"
