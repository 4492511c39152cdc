"""The demo model's emphasis training data (tools/demo_model/emphasis.py) and its loss weights."""
from __future__ import annotations

import random

import pytest
import torch

from modules.prompts.encode import apply_emphasis, parse_weighted
from tools.demo_model import architecture as arch
from tools.demo_model.dataset import make_dataset
from tools.demo_model.emphasis import (FINAL_NORM_SHIFT, eligible, encode_ids_and_weights,
                                       fix_final_norm_shift, weighted_caption)


@pytest.fixture(scope="module")
def tokenizer():
    return arch.tokenizer()


def eligible_samples(count: int = 120):
    return [s for s in make_dataset(0, count, 64) if eligible(s)]


def test_eligible_scenes_have_large_and_small_shapes_and_their_captions_weight_by_size():
    samples = eligible_samples()
    assert len(samples) >= 10
    for sample in samples:
        text = weighted_caption(sample, random.Random(sample.index))
        assert "large" not in text and "small" not in text  # the weights say it instead
        weighted = [(piece, w) for piece, w in parse_weighted(text) if w != 1.0]
        assert len(weighted) == len(sample.shapes)
        for (piece, weight), shape in zip(weighted, sample.shapes):
            assert (weight > 1.0) == (shape.size == "large"), (text, shape)
            assert shape.colour in piece or shape.shape in piece
        assert text.endswith(f"{sample.background} background")


def test_plain_captions_tokenize_as_the_training_tokenizer_does(tokenizer):
    for sample in make_dataset(0, 40, 64):
        ids, weights = encode_ids_and_weights(tokenizer, sample.caption)
        expected = tokenizer(sample.caption, padding="max_length", max_length=77, truncation=True).input_ids
        assert ids == expected and set(weights) == {1.0}


def test_weights_land_on_the_weighted_words(tokenizer):
    ids, weights = encode_ids_and_weights(tokenizer, "a (red:1.4) circle and a (blue square:0.6), white background")
    words = tokenizer.convert_ids_to_tokens(ids)
    assert len(ids) == len(weights) == 77 and ids[0] == tokenizer.bos_token_id
    assert {w for t, w in zip(words, weights) if t in ("red</w>",)} == {1.4}
    assert {w for t, w in zip(words, weights) if t in ("blue</w>", "square</w>")} == {0.6}
    assert {w for t, w in zip(words, weights) if t in ("circle</w>", "white</w>")} == {1.0}


def test_the_fixed_final_norm_shift_keeps_original_emphasis_a_gentle_rescale(tokenizer):
    """With the shift the chunk mean is ~1, so restoring it rescales by ~1 instead of flipping the sign."""
    torch.manual_seed(0)
    sizes = arch.Sizes(text_width=32, text_layers=1, text_heads=2)
    ids, weights = encode_ids_and_weights(tokenizer, "a (red:1.4) circle and a (blue:0.6) square")
    encoder = arch.build_text_encoder(sizes, set(ids))
    fix_final_norm_shift(encoder)
    core = getattr(encoder, "text_model", encoder)
    assert not core.final_layer_norm.bias.requires_grad
    assert torch.all(core.final_layer_norm.bias == FINAL_NORM_SHIFT)
    with torch.no_grad():
        z = encoder(torch.tensor([ids])).last_hidden_state
    w = torch.tensor([weights])
    weighted = apply_emphasis(z, w, "Original")
    scale = weighted / (z * w.unsqueeze(-1))
    assert float(z.mean()) == pytest.approx(FINAL_NORM_SHIFT, abs=0.1)
    assert float(scale.mean()) == pytest.approx(1.0, abs=0.05)


def test_min_snr_weights_only_the_nearly_clean_timesteps_down():
    from diffusers import DDPMScheduler

    from tools.demo_model.train import denoising_loss

    noise = DDPMScheduler.from_config(arch.scheduler_config())
    pred, eps = torch.zeros(2, 4, 2, 2), torch.ones(2, 4, 2, 2)  # per-sample MSE 1
    t = torch.tensor([5, 900])  # SNR ~ 200 and ~ 0.01
    assert float(denoising_loss(pred, eps, t, noise, 0.0)) == pytest.approx(1.0)
    low, high = (float(denoising_loss(pred[:1], eps[:1], t[i:i + 1], noise, 5.0)) for i in (0, 1))
    assert high == pytest.approx(1.0) and low < 0.1  # min(SNR, 5) / SNR
