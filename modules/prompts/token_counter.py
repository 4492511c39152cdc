"""The prompt box's token counter, as A1111's UI shows it: "used/limit" for the longest scheduled variant."""
from __future__ import annotations

from modules.prompts.encode import CHUNK_TOKENS, parse_weighted, tokenize_prompt
from modules.prompts.extra_networks import parse_prompt
from modules.prompts.parser import get_learned_conditioning_prompt_schedules, get_multicond_prompt_list


def count_tokens(prompt: str, tokenizer, steps: int = 20, *, is_positive: bool = True, embeddings=None,
                 emphasis: str = "Original") -> tuple[int, int]:
    """(tokens used, limit): tokens of the longest text any step uses; limit = next multiple of 75 (>= 75).

    Extra-network tags (`<lora:...>`) are not counted; AND splits the positive prompt; BREAK counts the
    chunk it closes as full, as A1111 does; `embeddings` (EmbeddingDatabase or EmbeddingSet) counts an
    embedding's trigger as its vector count.
    """
    texts = _scheduled_texts(prompt, max(1, int(steps)), is_positive)
    triggers = None
    if embeddings is not None:
        found = embeddings if hasattr(embeddings, "trigger_index") else embeddings.for_model(None)
        triggers = found.trigger_index(tokenizer)
    used = 0
    for text in texts:
        try:
            pieces = parse_weighted(text, emphasis)
        except Exception:  # noqa: BLE001 - the counter must never fail while the user is typing
            pieces = [(text, 1.0)]
        used = max(used, tokenize_prompt(pieces, tokenizer, triggers).token_count)
    return used, token_limit(used)


def token_limit(used: int) -> int:
    """The next multiple of 75 at or above `used` (75 for an empty prompt)."""
    return max(1, -(-max(used, 1) // CHUNK_TOKENS)) * CHUNK_TOKENS


def _scheduled_texts(prompt: str, steps: int, is_positive: bool) -> list[str]:
    try:
        text, _ = parse_prompt(prompt)
        flat = get_multicond_prompt_list([text])[1] if is_positive else [text]
        schedules = get_learned_conditioning_prompt_schedules(flat, steps)
    except Exception:  # noqa: BLE001 - half-typed syntax: count the text as it stands
        return [prompt]
    return [text for schedule in schedules for _, text in schedule] or [prompt]
