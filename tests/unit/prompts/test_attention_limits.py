"""Prompt attention, comments and extra-network tags are parsed in linear time: a prompt of up to 1 MB of the
wrong characters (a run of spaces, brackets nested deep, a '<lora:' that never closes) takes well under a
second instead of freezing the worker, and the results are A1111's (compared on random short prompts)."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modules.prompts.extra_networks import parse_prompt
from modules.prompts.parser import parse_prompt_attention, strip_comments
from tests.helpers.deadline import cpu_seconds

MB = 1 << 20
LIMIT_S = 1.0


def mb(piece: str, *, head: str = "", tail: str = "", size: int = MB) -> str:
    return head + piece * (size // len(piece)) + tail


# The API caps prompts at 32 KB; attention is timed on half a megabyte, which a quadratic parse would take
# hours on too (measured once here: under 0.8 s CPU for the worst shape at a full megabyte).
HALF = MB // 2


SHAPES = {
    "spaces then a word": mb(" ", tail="x", size=HALF),
    "spaces before BREAK": mb(" ", tail="BREAK", size=HALF),
    "BREAKs": mb("BREAK ", size=HALF),
    "newlines": mb("\n", tail="x", size=HALF),
    "colons": mb(":", size=HALF),
    "colon spaces": mb(": ", size=HALF),
    "colon digits": mb("1", head="(a:", tail="x", size=HALF),
    "open brackets": mb("(", size=HALF),
    "close brackets": mb(")", size=HALF),
    "nested with text": mb("(a", tail=")" * 1000, size=HALF),
    "deeply nested": "(a" * (HALF // 4) + ")" * (HALF // 4),
    "alternating nests": "[(a" * (HALF // 6) + ")]" * (HALF // 6),
    "weights": mb("(a:1.1)", size=HALF),
    "nested weights": "(a:" * (HALF // 8) + "1.5)" * (HALF // 8),
    "lone backslashes": mb("\\a", size=HALF),
    "escaped brackets": mb("\\(", size=HALF),
    "words": mb("a ", size=HALF),
}


@pytest.mark.parametrize("prompt", SHAPES.values(), ids=SHAPES.keys())
def test_attention_of_half_a_megabyte_prompt_in_under_a_second(prompt):
    seconds, runs = cpu_seconds(lambda: parse_prompt_attention(prompt))
    assert seconds < LIMIT_S, f"{seconds:.2f} s"
    assert sum(len(text) for text, weight in runs if weight != -1) <= len(prompt)


COMMENT_SHAPES = {
    "spaces then a word": mb(" ", tail="x"),
    "spaces then a comment": mb(" ", tail="# x"),
    "tabs": mb("\t", head="a #", tail="x"),
    "hashes": mb("#"),
    "comment lines": mb("  # c\n"),
    "words and a comment": mb("a ", tail="#"),
}


@pytest.mark.parametrize("prompt", COMMENT_SHAPES.values(), ids=COMMENT_SHAPES.keys())
def test_comments_of_a_megabyte_prompt_in_under_a_second(prompt):
    seconds, _ = cpu_seconds(lambda: strip_comments(prompt))
    assert seconds < LIMIT_S, f"{seconds:.2f} s"


TAG_SHAPES = {
    "tags never closed": mb("<lora:"),
    "one long tag never closed": mb("x", head="<lora:"),
    "tags": mb("<lora:a:0.5>", size=HALF),  # real work per tag (44k of them): linear, timed on less
    "angles": mb("<"),
    "words without colon": mb("a", head="<"),
}


@pytest.mark.parametrize("prompt", TAG_SHAPES.values(), ids=TAG_SHAPES.keys())
def test_extra_network_tags_of_a_megabyte_prompt_in_under_a_second(prompt):
    seconds, _ = cpu_seconds(lambda: parse_prompt(prompt))
    assert seconds < LIMIT_S, f"{seconds:.2f} s"


# ---- the same results as A1111's regexes and quadratic loops, on short prompts ----------------------

A1111_ATTENTION = re.compile(r"""
    \\\( | \\\) | \\\[ | \\] | \\\\ | \\ | \( | \[ | :\s*([+-]?[.\d]+)\s*\) | \) | ] | [^\\()\[\]:]+ | :
""", re.X)
A1111_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def reference_attention(text: str) -> list[list]:
    """A1111's parse_prompt_attention (this project keeps the text of a weight that is not a number)."""
    res: list[list] = []
    rounds: list[int] = []
    squares: list[int] = []

    def multiply(start: int, factor: float) -> None:
        for item in res[start:]:
            item[1] *= factor

    for m in A1111_ATTENTION.finditer(text):
        token, weight = m.group(0), m.group(1)
        if token.startswith("\\"):
            res.append([token[1:], 1.0])
        elif token == "(":
            rounds.append(len(res))
        elif token == "[":
            squares.append(len(res))
        elif weight is not None and rounds:
            try:
                factor = float(weight)
            except ValueError:
                res.append([token, 1.0])
                continue
            multiply(rounds.pop(), factor)
        elif token == ")" and rounds:
            multiply(rounds.pop(), 1.1)
        elif token == "]" and squares:
            multiply(squares.pop(), 1 / 1.1)
        else:
            for i, part in enumerate(A1111_BREAK.split(token)):
                if i:
                    res.append(["BREAK", -1])
                res.append([part, 1.0])
    for start in rounds:
        multiply(start, 1.1)
    for start in squares:
        multiply(start, 1 / 1.1)
    if not res:
        return [["", 1.0]]
    i = 0
    while i + 1 < len(res):
        if res[i][1] == res[i + 1][1]:
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1
    return res


def reference_comments(text: str) -> str:
    text = re.sub(r"(?m)^[ \t]*#[^\n]*(?:\n|$)", "", text)
    return re.sub(r"[ \t]*#[^\n]*", "", text)


PIECES = st.sampled_from(list("()[]:\\ a1.+-\t\n#\u2028")
                         + ["BREAK", " BREAK ", "BRE", "AK", ":1)", ":0)", ":-1)", ":1.1)", "\\(", "xBREAK",
                            ":1.2.3)", "<lora:a:1>", "<", ">", "  # c\n", "#"])
PROMPT = st.lists(PIECES, max_size=30).map("".join)


@settings(max_examples=600, deadline=None)
@given(PROMPT)
def test_attention_matches_a1111(prompt):
    ours, theirs = parse_prompt_attention(prompt), reference_attention(prompt)
    assert ours == theirs and [type(w) for _, w in ours] == [type(w) for _, w in theirs]


@settings(max_examples=600, deadline=None)
@given(PROMPT)
def test_comments_match_the_two_regexes(prompt):
    assert strip_comments(prompt) == reference_comments(prompt)


@settings(max_examples=600, deadline=None)
@given(PROMPT)
def test_extra_network_tags_match_the_regex(prompt):
    cleaned, found = parse_prompt(prompt)
    assert cleaned == re.sub(r"<(\w+):([^>]+)>", "", prompt)
    assert sum(len(calls) for calls in found.values()) == len(re.findall(r"<(\w+):([^>]+)>", prompt))


def test_deep_nesting_still_gives_close_weights():
    """Past the exact budget weights are counted, not multiplied in A1111's order: equal to 1e-9."""
    depth = 2000
    runs = parse_prompt_attention("(a" * depth + ")" * depth)
    assert len(runs) == depth
    assert runs[0][1] == pytest.approx(1.1, rel=1e-9) and runs[-1][1] == pytest.approx(1.1 ** depth, rel=1e-9)
