"""Rebuild CLIP's tokenizer files (vocab.json, merges.txt) from the BPE list in the open_clip wheel.

Usage: python configs/tokenizers/rebuild_clip.py path/to/bpe_simple_vocab_16e6.txt.gz
The result is committed under configs/tokenizers/; this script only documents where it came from.
"""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# CLIP uses the first 49152 - 256 - 2 merges of the list (line 0 is a version header).
N_MERGES = 49152 - 256 - 2


def byte_symbols() -> list[str]:
    """The 256 printable stand-ins for bytes 0..255, in CLIP's (GPT-2's) order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def build(bpe_gz: Path) -> tuple[dict[str, int], list[str]]:
    """Token -> id table and the merge lines, exactly as CLIP builds them."""
    with gzip.open(bpe_gz, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = lines[1 : N_MERGES + 1]
    symbols = byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(tokens)}, merges


def write(folder: Path, vocab: dict[str, int], merges: list[str], pad_token: str) -> None:
    """Write one tokenizer folder; only pad_token differs between CLIP (SD1) and OpenCLIP (SD2/SDXL)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    special = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": pad_token,
    }
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
        **special,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    vocab, merges = build(Path(sys.argv[1]))
    assert len(vocab) == 49408, len(vocab)
    write(HERE / "clip", vocab, merges, pad_token="<|endoftext|>")
    write(HERE / "clip-pad-excl", vocab, merges, pad_token="!")
