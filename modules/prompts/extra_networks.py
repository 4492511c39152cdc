"""Extra-network tags in prompts: `<name:arg:...>` (e.g. `<lora:film:0.8>`), with `k=v` named args.

Tags are taken out of the prompt text and handed to the network that owns the name; the infotext keeps
the original prompt, so the tags survive a round trip.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_TAG = re.compile(r"<(\w+):([^>]+)>")


@dataclass
class ExtraNetworkParams:
    """One tag's arguments: all items as written, the positional ones, and the `k=v` ones."""

    items: list[str] = field(default_factory=list)
    positional: list[str] = field(default_factory=list)
    named: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_items(cls, items: list[str]) -> ExtraNetworkParams:
        params = cls(items=list(items))
        for item in items:
            key, sep, value = item.partition("=")
            if sep and "=" not in value:
                params.named[key] = value
            else:
                params.positional.append(item)
        return params


def parse_prompt(prompt: str) -> tuple[str, dict[str, list[ExtraNetworkParams]]]:
    """Remove tags from `prompt`; returns (cleaned text, network name -> calls in order)."""
    found: dict[str, list[ExtraNetworkParams]] = {}

    def take(match: re.Match) -> str:
        found.setdefault(match.group(1), []).append(ExtraNetworkParams.from_items(match.group(2).split(":")))
        return ""

    # Only up to the last '>': from a '<' with no '>' after it the regex would scan to the end, every time.
    cut = prompt.rfind(">") + 1
    return _TAG.sub(take, prompt[:cut]) + prompt[cut:], found


def parse_prompts(prompts: list[str]) -> tuple[list[str], dict[str, list[ExtraNetworkParams]]]:
    """Clean every prompt; the networks come from the first prompt only (they apply to the whole batch)."""
    cleaned, networks = [], {}
    for i, prompt in enumerate(prompts):
        text, found = parse_prompt(prompt)
        cleaned.append(text)
        if i == 0:
            networks = found
    return cleaned, networks
