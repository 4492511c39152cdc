"""The AND splitter (composable diffusion sub-prompts and their `:weight`) is linear: 1 MB of adversarial
prompt splits in well under a second, and it splits exactly as A1111's regex does."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modules.prompts.parser import get_multicond_prompt_list
from tests.helpers.deadline import cpu_seconds

MB = 1 << 20
LIMIT_S = 1.0


def mb(piece: str, *, head: str = "", tail: str = "") -> str:
    return head + piece * (MB // len(piece)) + tail


SHAPES = {
    "spaces then a word": mb(" ", tail="x"),
    "word, spaces, word": mb(" ", head="x", tail="x"),
    "spaces then a colon": mb(" ", tail=":x"),
    "space colons": mb(" :"),
    "colon spaces": mb(": "),
    "colons": mb(":"),
    "digits": mb("1"),
    "colon then digits then text": mb("1", head=":", tail="x"),
    "colon spaces digits text": mb(" ", head=":", tail="1x"),
    "dots": mb("."),
    "weights": mb(" :1"),
    "weight-like runs": mb(":1."),
    "newlines": mb("\n", tail="x"),
    "ANDs": mb("AND "),
    "sub-prompts with weights": mb("a:0.5 AND "),
    "spaces before AND": mb(" ", tail="AND x"),
    "tabs and signs": mb("\t:+-."),
}


@pytest.mark.parametrize("prompt", SHAPES.values(), ids=SHAPES.keys())
def test_a_megabyte_prompt_splits_in_under_a_second(prompt):
    seconds, (indexes, flat, _) = cpu_seconds(lambda: get_multicond_prompt_list([prompt]))
    assert seconds < LIMIT_S, f"{seconds:.2f} s"
    assert flat and indexes[0]


# A1111's sub-prompt pattern: the text, then an optional `:weight`, then trailing whitespace.
A1111_AND = re.compile(r"\bAND\b")
A1111_WEIGHT = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$")


def reference(prompts):
    res_indexes, flat, index_of = [], [], {}
    for prompt in prompts:
        indexes = []
        for sub in A1111_AND.split(prompt):
            match = A1111_WEIGHT.search(sub)
            text, weight = match.groups() if match is not None else (sub, 1.0)
            weight = float(weight) if weight is not None else 1.0
            if text not in index_of:
                index_of[text] = len(flat)
                flat.append(text)
            indexes.append((index_of[text], weight))
        res_indexes.append(indexes)
    return res_indexes, flat, index_of


PIECES = st.sampled_from(list(" :.+-1230a\t\n\u00a0\u2028e")
                         + [" AND ", "AND", ":0.5", ": 1.", " :-.5 ", "1.2.3"])
PROMPT = st.lists(PIECES, max_size=25).map("".join)


@settings(max_examples=600, deadline=None)
@given(st.lists(PROMPT, min_size=1, max_size=3))
def test_splits_as_a1111(prompts):
    assert get_multicond_prompt_list(prompts) == reference(prompts)
