"""Random bracket soups through parsing, chunking, encoding and conditioning never raise."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modules.prompts.conditioning import prepare_conditioning
from modules.prompts.encode import EMPHASIS_MODES, PromptEncoder
from modules.prompts.token_counter import count_tokens

PIECES = ["a", "cat", " ", ",", "(", ")", "[", "]", ":", "|", "\\", "1.5", "0.3", "-1", "BREAK", "AND",
          "<lora:x:1>", "dog ", "\n", "{", "}", "embedding", "::", "]["]
soups = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def encoders(tiny_sd15_pipe):
    return {mode: PromptEncoder.from_pipe(tiny_sd15_pipe, emphasis=mode) for mode in EMPHASIS_MODES}


@FUZZ
@given(text=soups, mode=st.sampled_from(EMPHASIS_MODES))
def test_encoder_takes_any_text(encoders, text, mode):
    encoded = encoders[mode].encode(text)
    assert encoded.embeds.shape == (encoded.chunk_count * 77, 32)
    assert torch.isfinite(encoded.embeds).all()


@FUZZ
@given(prompt=soups, negative=soups, steps=st.integers(1, 6))
def test_conditioning_and_counter_take_any_text(tiny_sd15_pipe, prompt, negative, steps):
    cond = prepare_conditioning(tiny_sd15_pipe, [prompt], [negative], steps=steps)
    assert cond.pipe_kwargs["prompt_embeds"].shape == cond.pipe_kwargs["negative_prompt_embeds"].shape
    if cond.step_callback is not None:  # every step's frame builds and swaps in without error
        kwargs = cond.pipe_kwargs
        tensors = {"prompt_embeds": torch.cat([kwargs["negative_prompt_embeds"], kwargs["prompt_embeds"]])}
        for step in range(steps):
            tensors = cond.step_callback(tiny_sd15_pipe, step, 0, tensors)
            assert tensors["prompt_embeds"].shape[0] == 2
    used, limit = count_tokens(prompt, tiny_sd15_pipe.tokenizer, steps=steps)
    assert 0 <= used <= limit and limit % 75 == 0
