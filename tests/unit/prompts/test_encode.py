"""Prompt encoding: chunks of 75, BREAK, comma backtrack, emphasis, clip skip, SDXL pooled; token counter."""
from __future__ import annotations

import copy

import pytest
import torch

from modules.prompts.encode import PromptEncoder, apply_emphasis, parse_weighted
from modules.prompts.token_counter import count_tokens, token_limit

WORDS = ["cat", "dog", "bird", "fish", "tree", "house", "river", "cloud", "stone", "fire"]


def words(count: int, start: int = 0) -> str:
    """`count` one-token words (all in CLIP's vocabulary as single tokens)."""
    return " ".join(WORDS[(start + i) % len(WORDS)] for i in range(count))


@pytest.fixture(scope="module")
def sd15(tiny_sd15_pipe):
    return PromptEncoder.from_pipe(tiny_sd15_pipe)


@pytest.fixture(scope="module")
def biased_encoder(tiny_sd15_pipe):
    """The tiny SD1.5 encoder with a non-zero final LayerNorm bias: its outputs have a real mean to restore."""
    encoder = copy.deepcopy(tiny_sd15_pipe.text_encoder)
    core = getattr(encoder, "text_model", encoder)
    with torch.no_grad():
        core.final_layer_norm.bias.copy_(torch.linspace(0.2, 0.8, core.final_layer_norm.bias.numel()))
    return tiny_sd15_pipe.tokenizer, encoder


def test_weight_one_equals_diffusers_encode_prompt(tiny_sd15_pipe, sd15):
    ours = sd15.encode("a photo of a cat, highly detailed")
    with torch.no_grad():
        theirs = tiny_sd15_pipe.encode_prompt("a photo of a cat, highly detailed", "cpu", 1, False)[0]
    assert ours.embeds.shape == (77, 32) and ours.chunk_count == 1 and ours.pooled is None
    torch.testing.assert_close(ours.embeds, theirs[0], rtol=0, atol=0)


def test_sdxl_equals_diffusers_and_pooled_comes_from_first_chunk(tiny_sdxl_pipe):
    encoder = PromptEncoder.from_pipe(tiny_sdxl_pipe)
    ours = encoder.encode("a photo of a cat")
    with torch.no_grad():
        embeds, _, pooled, _ = tiny_sdxl_pipe.encode_prompt("a photo of a cat", device="cpu",
                                                            do_classifier_free_guidance=False)
    assert ours.embeds.shape == (77, 96)  # 32 (CLIP-L) + 64 (OpenCLIP-G) side by side
    torch.testing.assert_close(ours.embeds, embeds[0], rtol=0, atol=0)
    torch.testing.assert_close(ours.pooled, pooled[0], rtol=0, atol=0)

    long = encoder.encode(words(100))
    first_chunk = encoder.encode(words(75))
    assert long.chunk_count == 2
    torch.testing.assert_close(long.pooled, first_chunk.pooled)
    assert not torch.allclose(long.pooled, encoder.encode(words(25, start=75)).pooled)


def test_hundred_tokens_make_two_chunks_of_77(sd15):
    encoded = sd15.encode(words(100))
    assert encoded.chunk_count == 2 and encoded.embeds.shape == (154, 32) and encoded.token_count == 100
    torch.testing.assert_close(encoded.embeds[:77], sd15.encode(words(75)).embeds)
    torch.testing.assert_close(encoded.embeds[77:], sd15.encode(words(25, start=75)).embeds)


def test_break_starts_a_new_chunk(sd15):
    tokenized = sd15.tokenize("a cat BREAK a dog")
    assert [c.ids for c in tokenized.chunks] == [[320, 2368], [320, 1929]]
    assert tokenized.token_count == 77  # a closed chunk counts as 75, as A1111's counter shows
    encoded = sd15.encode("a cat BREAK a dog")
    torch.testing.assert_close(encoded.embeds[77:], sd15.encode("a dog").embeds)


def test_comma_backtrack_moves_the_last_phrase_to_the_next_chunk(sd15):
    text = words(70) + ", " + words(10, start=3)  # 70 + comma + 10 = 81 tokens
    chunks = sd15.tokenize(text).chunks
    assert len(chunks[0]) == 71 and chunks[0].ids[-1] == 267  # ",</w>" ends the first chunk
    assert len(chunks[1]) == 10
    far = words(40) + ", " + words(50, start=1)  # comma 35 tokens back: no backtrack
    assert [len(c) for c in sd15.tokenize(far).chunks] == [75, 16]


def test_original_emphasis_scales_the_token_then_restores_the_mean(biased_encoder):
    encoder = PromptEncoder([biased_encoder[0]], [biased_encoder[1]])
    plain = encoder.encode("a photo of a cat").embeds
    weighted = encoder.encode("a (photo:1.5) of a cat").embeds
    weights = torch.ones(77)
    weights[2] = 1.5  # BOS, "a", "photo"
    scaled = plain * weights[:, None]
    expected = scaled * (plain.mean() / scaled.mean())
    torch.testing.assert_close(weighted, expected)
    torch.testing.assert_close(weighted.mean(), plain.mean())
    ratio = (weighted / plain)
    torch.testing.assert_close(ratio[2], ratio[3] * 1.5)


def test_no_norm_multiplies_only_and_ignore_drops_weights(biased_encoder):
    tokenizer, text_encoder = biased_encoder
    plain = PromptEncoder([tokenizer], [text_encoder]).encode("a photo of a cat").embeds
    no_norm = PromptEncoder([tokenizer], [text_encoder], emphasis="No norm").encode("a (photo:1.5) of a cat").embeds
    torch.testing.assert_close(no_norm[2], plain[2] * 1.5)
    torch.testing.assert_close(no_norm[3], plain[3])
    ignore = PromptEncoder([tokenizer], [text_encoder], emphasis="Ignore").encode("a (photo:1.5) of a cat")
    torch.testing.assert_close(ignore.embeds, plain)
    literal = PromptEncoder([tokenizer], [text_encoder], emphasis="None").tokenize("a (photo:1.5) BREAK")
    assert len(literal.chunks) == 1 and literal.token_count > 5  # brackets and BREAK are words


def test_apply_emphasis_survives_zero_mean():
    z = torch.tensor([[[1.0, -1.0], [2.0, -2.0]]])
    out = apply_emphasis(z, torch.tensor([[1.0, 2.0]]), "Original")
    torch.testing.assert_close(out, torch.tensor([[[1.0, -1.0], [4.0, -4.0]]]))


def test_clip_skip_uses_earlier_layer_with_final_norm(tiny_sd15_pipe):
    encoder = PromptEncoder.from_pipe(tiny_sd15_pipe, clip_skip=2)
    ours = encoder.encode("a photo of a cat").embeds
    ids = tiny_sd15_pipe.tokenizer("a photo of a cat", padding="max_length", max_length=77,
                                   return_tensors="pt").input_ids
    with torch.no_grad():
        out = tiny_sd15_pipe.text_encoder(ids, output_hidden_states=True)
        core = getattr(tiny_sd15_pipe.text_encoder, "text_model", tiny_sd15_pipe.text_encoder)
        expected = core.final_layer_norm(out.hidden_states[-2])[0]
    torch.testing.assert_close(ours, expected)


def test_sdxl_clip_skip_counts_from_the_penultimate_layer(tiny_sdxl_pipe):
    skip1 = PromptEncoder.from_pipe(tiny_sdxl_pipe).encode("a cat")
    skip2 = PromptEncoder.from_pipe(tiny_sdxl_pipe, clip_skip=2).encode("a cat")
    with torch.no_grad():
        theirs = tiny_sdxl_pipe.encode_prompt("a cat", device="cpu", do_classifier_free_guidance=False,
                                              clip_skip=1)
    torch.testing.assert_close(skip2.embeds, theirs[0][0])  # ours 2 == diffusers' 1
    torch.testing.assert_close(skip2.pooled, skip1.pooled)  # clip skip never touches the pooled vector


def test_unknown_emphasis_is_rejected():
    with pytest.raises(ValueError, match="emphasis"):
        parse_weighted("a", "Loud")


@pytest.mark.parametrize(("prompt", "expected"), [
    ("", (0, 75)),
    ("a cat", (2, 75)),
    (words(100), (100, 150)),
    ("a cat BREAK a dog", (77, 150)),
    ("<lora:thing:0.8> a cat", (2, 75)),
    ("[a cat:" + words(80) + ":0.5]", (80, 150)),  # the longest scheduled variant counts
    ("a cat AND " + words(76), (76, 150)),
])
def test_count_tokens_as_the_a1111_counter(tiny_sd15_pipe, prompt, expected):
    assert count_tokens(prompt, tiny_sd15_pipe.tokenizer, steps=20) == expected


def test_token_limit():
    assert [token_limit(n) for n in (0, 1, 75, 76, 150, 151)] == [75, 75, 75, 150, 150, 225]
