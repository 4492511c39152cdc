"""Prompt encoding time: our weighted, chunked encoder vs diffusers' `encode_prompt` on the same tokens.

A ~300-token prompt with weights is encoded by `PromptEncoder.encode` (parse, tokenize, 4 chunks, one
encoder batch, emphasis). diffusers truncates at 77 tokens, so it gets the same token chunks as a batch of
4 prompt strings (the chunks decoded back to text), which is the same text-encoder work without our
parsing and weighting. Runs are interleaved so machine load hits both alike; medians are compared.

    venv/bin/python bench/bench_encode.py [--model tiny|demo] [--repeats 30]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

from bench._common import Row, alternate, ratio_row

PHRASES = ["a lighthouse on a cliff", "(stormy sea:1.3)", "[soft fog]", "dramatic ((golden)) light",
           "oil painting by an old master", "(highly detailed:1.1)", "seagulls in the distance",
           "wet rocks, foam and spray", "[[muted colors]]", "(cinematic composition:0.9)"]


def build_pipe(kind: str):
    if kind == "demo":
        from modules.pipelines.demo import build_demo_pipeline

        return build_demo_pipeline()
    from tests.fixtures.tiny_models import build_tiny_sd15_pipeline

    return build_tiny_sd15_pipeline()


def weighted_prompt(encoder, tokens: int = 300) -> str:
    """Comma-separated weighted phrases repeated until the prompt holds about `tokens` tokens."""
    parts: list[str] = []
    while encoder.tokenize(", ".join(parts)).token_count < tokens - 10:
        parts.append(PHRASES[len(parts) % len(PHRASES)])
    return ", ".join(parts)


def timed(fn) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        fn()
    return time.perf_counter() - start


def measure_encode(kind: str, repeats: int) -> tuple[Row, int, int]:
    """Our encoder vs diffusers' encode_prompt on a ~300-token weighted prompt; (row, tokens, chunks)."""
    from modules.prompts.encode import PromptEncoder

    pipe = build_pipe(kind)
    encoder = PromptEncoder.from_pipe(pipe)
    prompt = weighted_prompt(encoder)
    tokenized = encoder.tokenize(prompt)
    chunk_texts = [pipe.tokenizer.decode(chunk.ids) for chunk in tokenized.chunks]
    device = pipe._execution_device

    def ours():
        return encoder.encode(prompt)

    def theirs():
        return pipe.encode_prompt(chunk_texts, device, 1, False)

    for fn in (ours, theirs):  # warm-up
        timed(fn)
    times = alternate({"ours": lambda: timed(ours), "diffusers": lambda: timed(theirs)}, repeats)
    note = (f"{kind} model, {tokenized.token_count} tokens in {len(tokenized.chunks)} chunks vs the same chunks "
            f"as a batch, {repeats} repeats")
    row = ratio_row(f"prompt encoding, 300 weighted tokens, {kind}", times["ours"], times["diffusers"], "ms",
                    1000, note)
    return row, tokenized.token_count, len(tokenized.chunks)


def measure(quick: bool) -> list[Row]:
    """The prompt-encoding row on the demo model's text encoder (SD1.5 layout)."""
    return [measure_encode("demo", 10 if quick else 30)[0]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("tiny", "demo"), default="tiny")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    row, tokens, chunks = measure_encode(args.model, args.repeats)
    print(f"model: {args.model}, prompt: {tokens} tokens in {chunks} chunks, repeats: {args.repeats}")
    print(f"ours (parse + chunk + weights): {row.ours:8.2f} ms")
    print(f"diffusers encode_prompt:        {row.reference:8.2f} ms")
    print(f"ratio ours/diffusers:           {row.ratio:8.2f} (pairs {row.spread[0]:.2f}..{row.spread[1]:.2f})")


if __name__ == "__main__":
    main()
