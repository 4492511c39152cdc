"""Bundled configs and tokenizers, and loading checkpoints offline."""
from __future__ import annotations

import torch
from transformers import CLIPTokenizer

from modules.paths import CONFIGS_DIR
from tests.fixtures.tiny_models import build_tiny_sd15_pipeline


def test_clip_tokenizer_ids_match_clip():
    tok = CLIPTokenizer.from_pretrained(CONFIGS_DIR / "tokenizers" / "clip")
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tok.model_max_length == 77 and len(tok) == 49408
    assert tok.pad_token_id == 49407


def test_openclip_tokenizer_pads_with_exclamation():
    tok = CLIPTokenizer.from_pretrained(CONFIGS_DIR / "tokenizers" / "clip-pad-excl")
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tok.pad_token == "!" and tok.pad_token_id == 0


def test_tiny_pipeline_is_deterministic_and_generates(tiny_sd15_pipe, no_network):
    again = build_tiny_sd15_pipeline(seed=0)
    for a, b in zip(tiny_sd15_pipe.unet.state_dict().values(), again.unet.state_dict().values()):
        assert torch.equal(a, b)
    out = tiny_sd15_pipe("a photo of a cat", num_inference_steps=2, output_type="np",
                         generator=torch.Generator().manual_seed(1)).images
    assert out.shape == (1, 64, 64, 3)
