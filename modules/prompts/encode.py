"""Weighted prompt text -> text-encoder embeddings, A1111 style: 75-token chunks, BREAK, emphasis, clip skip.

One prompt text (already split by AND and resolved to one schedule step) is parsed with
`parse_prompt_attention`, tokenized without BOS/EOS, cut into chunks of at most 75 tokens, and each chunk
is wrapped to 77 positions: BOS + tokens + EOS + pad (the tokenizer's own `pad_token_id`, so "!" = id 0
after EOS for OpenCLIP tokenizers of SD2 / SDXL's tokenizer_2, EOS again for CLIP-L). All chunks of one
text go through the encoder in one batch and are concatenated along the sequence axis.

Clip skip is in A1111 units (1 = no skip); diffusers' `clip_skip` is ours minus one, for every family:
  SD1/SD2 (one encoder): 1 -> last_hidden_state; n > 1 -> final_layer_norm(hidden_states[-n]).
    diffusers' SD2 encoder already ends at OpenCLIP's penultimate layer, so 1 is SD2's native output
    (A1111 ignores clip skip on SD2; we count on from there, as diffusers does).
  SDXL (two encoders): hidden_states[-(n + 1)] of both, no final layer norm, so 1 = penultimate layer,
    which is SDXL's native conditioning; the pooled vector (text_embeds of text_encoder_2) ignores clip skip.

Emphasis modes (A1111 names): "Original" multiplies each position's vector by its weight, then rescales the
chunk so its mean equals the unweighted mean (per chunk, per prompt, per encoder; A1111 takes the mean over
the whole batch of a chunk, we keep prompts independent of their batch neighbours); "No norm" multiplies
only; "Ignore" parses but uses weight 1; "None" does not parse at all: brackets and BREAK are plain text.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from modules.prompts.embeddings import Embedding, EmbeddingSet, TriggerIndex
from modules.prompts.parser import parse_prompt_attention

def _no_grad(method):
    """torch.no_grad() as a decorator that imports torch at the call, not when this module is imported."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        import torch

        with torch.no_grad():
            return method(*args, **kwargs)

    return wrapper


EMPHASIS_MODES = ("Original", "No norm", "Ignore", "None")
CHUNK_TOKENS = 75  # tokens of text per chunk; BOS and EOS make it 77 positions
COMMA_BACKTRACK = 20  # A1111 "comma_padding_backtrack": look back this many tokens for a comma


@dataclass(frozen=True)
class EncodedPrompt:
    """Embeddings of one prompt text: `embeds` [chunk_count * 77, width], `pooled` [projection] or None."""

    embeds: torch.Tensor
    pooled: torch.Tensor | None
    token_count: int
    chunk_count: int
    embeddings_used: tuple[str, ...] = ()


@dataclass
class PromptChunk:
    """Up to 75 positions of text: token ids, weights and, for textual-inversion slots, (embedding, row)."""

    ids: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    slots: list[tuple[Embedding, int] | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def take_from(self, start: int) -> PromptChunk:
        """Cut positions [start:] out of this chunk and return them as a new chunk."""
        tail = PromptChunk(self.ids[start:], self.weights[start:], self.slots[start:])
        del self.ids[start:], self.weights[start:], self.slots[start:]
        return tail


@dataclass(frozen=True)
class TokenizedPrompt:
    """A prompt cut into chunks; `token_count` as the A1111 counter shows it (full chunks count 75)."""

    chunks: tuple[PromptChunk, ...]
    token_count: int
    embeddings_used: tuple[str, ...] = ()
    skipped_used: tuple[str, ...] = ()


def parse_weighted(text: str, emphasis: str = "Original") -> list[tuple[str, float]]:
    """(text, weight) pieces of one prompt; ("BREAK", -1) separates chunks; "None" keeps the text literal."""
    if emphasis not in EMPHASIS_MODES:
        raise ValueError(f"unknown emphasis mode {emphasis!r}; expected one of {', '.join(EMPHASIS_MODES)}")
    if emphasis == "None":
        return [(text, 1.0)]
    pieces = [(str(piece), float(weight)) for piece, weight in parse_prompt_attention(text)]
    if emphasis == "Ignore":
        pieces = [(piece, weight if piece == "BREAK" and weight == -1 else 1.0) for piece, weight in pieces]
    return pieces


def tokenize_prompt(pieces: Sequence[tuple[str, float]], tokenizer, triggers: TriggerIndex | None = None,
                    comma_backtrack: int = COMMA_BACKTRACK) -> TokenizedPrompt:
    """Cut weighted pieces into <=75-token chunks (BREAK, comma backtrack, embedding slots kept whole)."""
    comma_id = comma_token_id(tokenizer)
    chunks: list[PromptChunk] = []
    chunk = PromptChunk()
    last_comma = -1  # index of the last comma in `chunk`, -1 when none
    counted = 0
    used: dict[str, None] = {}
    skipped: dict[str, None] = {}

    def close(is_last: bool = False) -> None:
        nonlocal chunk, last_comma, counted
        # the UI counter counts a closed chunk as full (75) and only the last one by its length
        counted += len(chunk) if is_last else CHUNK_TOKENS
        chunks.append(chunk)
        chunk, last_comma = PromptChunk(), -1

    texts = [text for text, weight in pieces if not (text == "BREAK" and weight == -1)]
    token_lists = iter(tokenizer(texts, add_special_tokens=False, verbose=False).input_ids if texts else [])
    for text, weight in pieces:
        if text == "BREAK" and weight == -1:
            close()
            continue
        ids = list(next(token_lists))
        pos = plain_until = 0
        while pos < len(ids):
            token = ids[pos]
            if token == comma_id:
                last_comma = len(chunk)
            elif (comma_backtrack and len(chunk) == CHUNK_TOKENS and last_comma != -1
                  and len(chunk) - last_comma <= comma_backtrack):
                # the chunk is full mid-phrase: move the words after the last comma to the next chunk
                tail = chunk.take_from(last_comma + 1)
                close()
                chunk = tail
            if len(chunk) == CHUNK_TOKENS:
                close()
            found = triggers.match(ids, pos) if triggers is not None and pos >= plain_until else None
            if found is not None and found.embedding is None:
                skipped[found.name] = None  # a skipped embedding's trigger stays plain words
                plain_until, found = pos + found.length, None
            if found is None:
                chunk.ids.append(token)
                chunk.weights.append(weight)
                chunk.slots.append(None)
                pos += 1
                continue
            embedding, length = found.embedding, found.length
            if len(chunk) + embedding.vector_count > CHUNK_TOKENS:
                close()  # an embedding's vectors never straddle two chunks
            used[embedding.name] = None
            # slot ids are placeholders (0) whose token vectors get replaced by the embedding's rows
            chunk.ids.extend([0] * embedding.vector_count)
            chunk.weights.extend([weight] * embedding.vector_count)
            chunk.slots.extend((embedding, row) for row in range(embedding.vector_count))
            pos += length
    if len(chunk) or not chunks:
        close(is_last=True)
    return TokenizedPrompt(tuple(chunks), counted, tuple(used), tuple(skipped))


def comma_token_id(tokenizer) -> int | None:
    """Id of CLIP's "," word token (None if the vocabulary has none); get_vocab() would copy 49k entries."""
    token_id = tokenizer.convert_tokens_to_ids(",</w>")
    return None if token_id is None or token_id == tokenizer.unk_token_id else int(token_id)


def select_layer(output: Any, text_encoder, clip_skip: int, sdxl: bool) -> torch.Tensor:
    """Hidden states of the layer clip skip picks (A1111 units, 1 = no skip), see the module docstring."""
    hidden = output.hidden_states
    if sdxl:
        return hidden[-min(clip_skip + 1, len(hidden))]
    if clip_skip <= 1:
        return output.last_hidden_state
    core = getattr(text_encoder, "text_model", text_encoder)  # transformers 5 CLIPTextModel has no .text_model
    return core.final_layer_norm(hidden[-min(clip_skip, len(hidden))])


def apply_emphasis(z: torch.Tensor, weights: torch.Tensor, emphasis: str) -> torch.Tensor:
    """Weight each position's vector ([chunks, 77, width] by [chunks, 77]); "Original" restores chunk means."""
    import torch

    if emphasis in ("Ignore", "None") or bool((weights == 1).all()):
        return z
    original_mean = z.mean(dim=(1, 2), keepdim=True)
    z = z * weights.to(z.dtype).unsqueeze(-1)
    if emphasis == "Original":
        new_mean = z.mean(dim=(1, 2), keepdim=True)
        # a chunk whose weighted mean is exactly zero cannot be rescaled; leave it weighted only
        scale = torch.where(new_mean == 0, torch.ones_like(new_mean), original_mean / new_mean)
        z = z * scale
    return z


class PromptEncoder:
    """Encodes prompt texts with a pipeline's own tokenizer(s) and text encoder(s)."""

    def __init__(self, tokenizers: Sequence, text_encoders: Sequence, *, clip_skip: int = 1,
                 emphasis: str = "Original", embeddings: EmbeddingSet | None = None, device=None,
                 sdxl: bool | None = None):
        if len(tokenizers) != len(text_encoders) or not tokenizers:
            raise ValueError("need one tokenizer per text encoder")
        if emphasis not in EMPHASIS_MODES:
            raise ValueError(f"unknown emphasis mode {emphasis!r}; expected one of {', '.join(EMPHASIS_MODES)}")
        self.tokenizers = list(tokenizers)
        self.text_encoders = list(text_encoders)
        self.clip_skip = max(1, int(clip_skip))
        self.emphasis = emphasis
        self.sdxl = len(text_encoders) == 2 if sdxl is None else sdxl
        self.embeddings = embeddings
        self.triggers = embeddings.trigger_index(self.tokenizers[0]) if embeddings is not None else None
        self.device = device if device is not None else next(self.text_encoders[0].parameters()).device
        # SDXL embedding files name their halves; single-encoder files have one unnamed tensor
        self.vector_keys = ("clip_l", "clip_g") if len(text_encoders) == 2 else ("",)

    @classmethod
    def from_pipe(cls, pipe, **options) -> PromptEncoder:
        """An encoder over `pipe.tokenizer`/`text_encoder` (and `tokenizer_2`/`text_encoder_2` when present)."""
        pairs = [(getattr(pipe, t, None), getattr(pipe, e, None))
                 for t, e in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"))]
        pairs = [(t, e) for t, e in pairs if t is not None and e is not None]
        if not pairs:
            raise ValueError(f"{type(pipe).__name__} has no tokenizer/text encoder to encode prompts with")
        if "device" not in options:
            from modules.devices import execution_device

            try:
                options["device"] = execution_device(pipe)
            except AttributeError:  # a stand-in with no device at all: the text encoder's parameters decide
                options["device"] = None
        options.setdefault("sdxl", getattr(pipe, "text_encoder_2", None) is not None)
        return cls([t for t, _ in pairs], [e for _, e in pairs], **options)

    @property
    def widths(self) -> tuple[int, ...]:
        """Token-embedding width of each text encoder (768 / 1024 / 1280 on real models)."""
        return tuple(int(e.get_input_embeddings().weight.shape[1]) for e in self.text_encoders)

    def tokenize(self, text: str) -> TokenizedPrompt:
        """Chunks of one prompt text (no AND, no schedule syntax left)."""
        return tokenize_prompt(parse_weighted(text, self.emphasis), self.tokenizers[0], self.triggers)

    @_no_grad
    def encode(self, text: str) -> EncodedPrompt:
        """Embeddings of one prompt text: every chunk encoded, weighted and concatenated."""
        tokenized = self.tokenize(text)
        return self.encode_chunks(tokenized)

    @_no_grad
    def encode_chunks(self, tokenized: TokenizedPrompt) -> EncodedPrompt:
        """Embeddings of already tokenized chunks, [chunks * 77, sum of encoder widths]."""
        import torch

        outputs, pooled = [], None
        for index, (tokenizer, encoder) in enumerate(zip(self.tokenizers, self.text_encoders)):
            z, pooled_here = self._encode_one(tokenizer, encoder, tokenized.chunks, self.vector_keys[index])
            outputs.append(z)
            if pooled_here is not None and index == len(self.text_encoders) - 1:
                pooled = pooled_here[0]  # pooled vector of the FIRST chunk, as A1111 and diffusers use
        z = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
        count = len(tokenized.chunks)
        return EncodedPrompt(z.reshape(count * (CHUNK_TOKENS + 2), z.shape[-1]), pooled if self.sdxl else None,
                             tokenized.token_count, count, tokenized.embeddings_used)

    def empty_chunk(self) -> torch.Tensor:
        """Embeddings of one empty chunk [77, width], the padding that evens out sequence lengths."""
        return self.encode_chunks(TokenizedPrompt((PromptChunk(),), 0)).embeds

    def _encode_one(self, tokenizer, encoder, chunks: Sequence[PromptChunk], key: str):
        import torch

        bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
        rows, weights, fixes = [], [], []
        for c, chunk in enumerate(chunks):
            rest = CHUNK_TOKENS - len(chunk)
            rows.append([bos, *chunk.ids, eos] + [pad] * rest)
            weights.append([1.0, *chunk.weights, 1.0] + [1.0] * rest)
            fixes += [(c, 1 + p, slot) for p, slot in enumerate(chunk.slots) if slot is not None]
        ids = torch.tensor(rows, dtype=torch.long, device=self.device)
        handle = None
        if fixes:
            handle = encoder.get_input_embeddings().register_forward_hook(_slot_filler(fixes, key))
        try:
            output = encoder(ids, output_hidden_states=True)
        finally:
            if handle is not None:
                handle.remove()  # the hook lives only for this call: the encoder stays untouched
        z = select_layer(output, encoder, self.clip_skip, self.sdxl)
        z = apply_emphasis(z, torch.tensor(weights, device=z.device), self.emphasis)
        return z, getattr(output, "text_embeds", None)


def _slot_filler(fixes: list[tuple[int, int, tuple[Embedding, int]]], key: str):
    """A forward hook on the token-embedding layer writing embedding rows into their slots."""

    def hook(module, args, output):
        output = output.clone()
        for chunk, position, (embedding, row) in fixes:
            output[chunk, position] = embedding.vectors[key][row].to(output.device, output.dtype)
        return output

    return hook
