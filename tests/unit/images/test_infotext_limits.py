"""Infotext parsing is linear: 1 MB of adversarial text (the API's `infotext` field, a PNG's `parameters`
chunk) parses in well under a second, and the linear parsers give exactly what A1111's regexes give."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modules.images.infotext import param_pairs, parse_infotext, uses_emphasis
from tests.helpers.deadline import cpu_seconds

MB = 1 << 20
LIMIT_S = 1.0
PARAMS = "Steps: 20, Sampler: Euler, Seed: 1, Size: 512x512"


def mb(piece: str, *, head: str = "", tail: str = "") -> str:
    """`head`, then `piece` repeated to about 1 MB, then `tail`."""
    return head + piece * (MB // len(piece)) + tail


# Shapes of the last line (the params line): runs that make a backtracking regex rescan from every start.
PARAM_LINES = {
    "word characters": mb("a"),
    "words and spaces": mb("a "),
    "key characters": mb("a-/ "),
    "quotes": mb('"'),
    "commas": mb(","),
    "colons": mb(":"),
    "backslashes": mb("\\"),
    "one-letter keys": mb("a:"),
    "short keys, no values": mb("ab:"),
    "spaces then a word": mb(" ", tail="x"),
    "key then spaces": mb(" ", head="ab", tail=":"),
    "open quote": mb("x", head='ab: "'),
    "escaped quotes": mb('\\"', head='ab: "'),
    "open quotes after keys": mb('ab: "'),
    "unclosed quoted values": mb('ab: "x, '),
    "quote comma quote": mb('",'),
    "quoted then junk": mb('ab: "x"y, '),
    "many pairs": mb("Steps: 1, "),
    "many quoted pairs": mb('Note: "a, b", '),
    "tabs and keys": mb("\tab"),
    "size values": mb("1", head="Size: ", tail="x1"),
    "version digits": mb("1", head=f"{PARAMS}, Version: v", tail=".2"),
}
# Shapes of the prompt part (everything before the params line).
PROMPTS = {
    "many lines": mb("a\n"),
    "blank lines": mb("\n", head="a"),
    "negative prompt lines": mb("Negative prompt: a\n"),
    "open brackets": mb("("),
    "close brackets": mb(")"),
    "open squares": mb("["),
    "nested with text": mb("(a", tail=")" * 1000),
    "deeply nested": "(a" * (MB // 4) + ")" * (MB // 4),
    "alternating nests": "[(a" * (MB // 6) + ")]" * (MB // 6),
    "weights": mb("(a:1.1)"),
    "colon spaces": mb(": "),
    "colon digits": mb("1", head="(a:", tail="x"),
    "spaces before BREAK": mb(" ", tail="x"),
    "BREAKs": mb("BREAK "),
    "escaped brackets": mb("\\("),
    "lone backslashes": mb("\\a"),
    "ANDs": mb("a AND "),
}


@pytest.mark.parametrize("line", PARAM_LINES.values(), ids=PARAM_LINES.keys())
def test_a_megabyte_params_line_parses_in_under_a_second(line):
    seconds, parsed = cpu_seconds(lambda: parse_infotext(f"a prompt\n{line}"))
    assert seconds < LIMIT_S, f"{seconds:.2f} s"
    assert parsed["Clip skip"]  # parsed to the end, defaults added


@pytest.mark.parametrize("prompt", PROMPTS.values(), ids=PROMPTS.keys())
def test_a_megabyte_prompt_parses_in_under_a_second(prompt):
    text = f"{prompt}\nNegative prompt: {prompt[:1000]}\n{PARAMS}"
    seconds, parsed = cpu_seconds(lambda: parse_infotext(text))
    assert seconds < LIMIT_S, f"{seconds:.2f} s"
    assert parsed["Steps"] == "20"


def test_a_megabyte_of_one_character_everywhere():
    for char in ' \t\n,:"\\()[]a1-/.':
        seconds, _ = cpu_seconds(lambda: parse_infotext(char * MB))
        assert seconds < LIMIT_S, (char, f"{seconds:.2f} s")


# ---- the linear parsers give what A1111's regexes give (checked on short texts, where they are fast) ----

# A1111's params-line pattern, as its infotext parser uses it with findall.
A1111_PAIR = re.compile(r"""\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)""")
A1111_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)
A1111_ATTENTION = re.compile(r"""
    \\\( | \\\) | \\\[ | \\] | \\\\ | \\ | \( | \[ | :\s*([+-]?[.\d]+)\s*\) | \) | ] | [^\\()\[\]:]+ | :
""", re.X)

LINE_PIECES = st.sampled_from(list('ab_1 -/:,"\\\t\nxé\u00a0\x1c') + ["Steps", ": ", ", ", '"a, b"', '\\"',
                                                                      "ab:", " :"])
LINE = st.lists(LINE_PIECES, max_size=30).map("".join)
PROMPT_PIECES = st.sampled_from(list("()[]:\\ a1.+-\t\n\u2028") + ["BREAK", " BREAK ", "BRE", "AK", ":1)",
                                                                  ":0)", ":-1)", ":1.1)", "\\(", "xBREAK"])
PROMPT = st.lists(PROMPT_PIECES, max_size=30).map("".join)


@settings(max_examples=600, deadline=None)
@given(LINE)
def test_param_pairs_match_a1111s_regex(line):
    assert param_pairs(line) == A1111_PAIR.findall(line)


def reference_uses_emphasis(prompt: str) -> bool:
    """A1111's attention parse (multiply each range as brackets close, merge equal runs), then its test."""
    res: list[list] = []
    rounds: list[int] = []
    squares: list[int] = []

    def multiply(start: int, factor: float) -> None:
        for item in res[start:]:
            item[1] *= factor

    for m in A1111_ATTENTION.finditer(prompt):
        text, weight = m.group(0), m.group(1)
        if text.startswith("\\"):
            res.append([text[1:], 1.0])
        elif text == "(":
            rounds.append(len(res))
        elif text == "[":
            squares.append(len(res))
        elif weight is not None and rounds and _is_float(weight):
            multiply(rounds.pop(), float(weight))
        elif text == ")" and rounds:
            multiply(rounds.pop(), 1.1)
        elif text == "]" and squares:
            multiply(squares.pop(), 1 / 1.1)
        else:
            for i, part in enumerate(A1111_BREAK.split(text)):
                if i:
                    res.append(["BREAK", -1])
                res.append([part, 1.0])
    for start in rounds:
        multiply(start, 1.1)
    for start in squares:
        multiply(start, 1 / 1.1)
    merged: list[list] = []
    for text, weight in res:
        if merged and merged[-1][1] == weight:
            merged[-1][0] += text
        else:
            merged.append([text, weight])
    return any(weight != 1.0 and text != "BREAK" for text, weight in merged)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@settings(max_examples=600, deadline=None)
@given(PROMPT)
def test_uses_emphasis_matches_a1111(prompt):
    assert uses_emphasis(prompt) is reference_uses_emphasis(prompt)


@pytest.mark.parametrize("prompt, expected", [
    ("[(a)]", False),  # 1.1 * (1/1.1) is exactly 1.0 in floats, as A1111 multiplies
    ("[BRE\\AK]", False),  # merged into one run "BREAK", which A1111's test skips
    ("(a BREAK b)", True),
    ("((a:1.0))", True),
    ("(a:1)(b:1)", False),
])
def test_uses_emphasis_edge_cases(prompt, expected):
    assert uses_emphasis(prompt) is expected is reference_uses_emphasis(prompt)
