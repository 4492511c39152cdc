"""Teach the demo model what A1111's emphasis `(word:1.4)` means: more of that thing.

A real checkpoint learns from billions of captions that a stronger word shows more; ours sees only the
procedural captions, which never contain weights, so `(red:1.4)` would be an input it never trained on. We
give it that meaning on scenes where it is well defined: a picture with a large and a small shape is also
captioned without the size words, the large shape's words weighted up and the small one's down
(`a (red:1.3) circle and a (blue:0.7) square, white background`). The weights go through the same parser,
tokenizer chunking and "Original" emphasis (weight, then restore the chunk mean) as at generation time.

The chunk mean that "Original" restores must not be near zero, or the rescale `old mean / new mean` flips or
blows up the whole conditioning: `FINAL_NORM_SHIFT` fixes the text encoder's last LayerNorm shift at 1 (a
constant on every position adds the same logit to every key and the same vector to every attention output,
so it changes nothing else).
"""
from __future__ import annotations

import random

import torch

from modules.prompts.encode import CHUNK_TOKENS, apply_emphasis, parse_weighted, tokenize_prompt
from tools.demo_model.dataset import POSITION_WORDS, Sample, _article

FINAL_NORM_SHIFT = 1.0
STRONG = (1.2, 1.6)  # weight range of the large shapes' words
WEAK = (0.5, 0.85)  # weight range of the small shapes' words


def fix_final_norm_shift(text_encoder) -> None:
    """Set the last LayerNorm's bias to FINAL_NORM_SHIFT and freeze it (see the module docstring)."""
    core = getattr(text_encoder, "text_model", text_encoder)  # transformers 5 CLIPTextModel has no .text_model
    bias = core.final_layer_norm.bias
    with torch.no_grad():
        bias.fill_(FINAL_NORM_SHIFT)
    bias.requires_grad_(False)


def eligible(sample: Sample) -> bool:
    """A picture whose shapes come in both sizes: weights then say which ones are the large ones."""
    sizes = {s.size for s in sample.shapes}
    return len(sample.shapes) >= 2 and sizes == {"small", "large"}


def _weighted(word: str, weight: float) -> str:
    return f"({word}:{weight:.2f})"


def weighted_caption(sample: Sample, rng: random.Random) -> str:
    """The plain caption of `sample` without size words, each shape's words weighted by its size."""
    phrases = []
    where = rng.choice(("colour", "shape", "both"))  # users weight a colour, a noun or the whole phrase
    keep_position = rng.random() < 0.5
    for s in sample.shapes:
        weight = rng.uniform(*(STRONG if s.size == "large" else WEAK))
        colour, shape = s.colour, s.shape
        if where == "colour":
            words = f"{_weighted(colour, weight)} {shape}"
        elif where == "shape":
            words = f"{colour} {_weighted(shape, weight)}"
        else:
            words = _weighted(f"{colour} {shape}", weight)
        phrase = f"{_article(colour)} {words}"
        if keep_position:
            phrase += " " + rng.choice(POSITION_WORDS[s.position])
        phrases.append(phrase)
    text = ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return text + f", {sample.background} background"


def encode_ids_and_weights(tokenizer, text: str) -> tuple[list[int], list[float]]:
    """77 token ids and weights of one prompt, wrapped as the prompt encoder wraps a chunk
    (BOS + tokens + EOS + pad, weight 1 outside the text). Captions are far shorter than one chunk."""
    tokenized = tokenize_prompt(parse_weighted(text), tokenizer)
    if len(tokenized.chunks) != 1:
        raise ValueError(f"caption longer than one chunk: {text!r}")
    chunk = tokenized.chunks[0]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    rest = CHUNK_TOKENS - len(chunk)
    return [bos, *chunk.ids, eos] + [pad] * rest, [1.0, *chunk.weights, 1.0] + [1.0] * rest


def emphasise(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The encoder output weighted as generation weights it ("Original": weight, then restore the mean)."""
    return apply_emphasis(hidden, weights, "Original")
