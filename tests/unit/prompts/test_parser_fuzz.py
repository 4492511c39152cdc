"""Random bracket soups: the parser functions never raise and always return well-formed data."""
from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from modules.prompts.extra_networks import parse_prompts
from modules.prompts.parser import (
    check_prompt_syntax,
    get_learned_conditioning_prompt_schedules,
    get_multicond_prompt_list,
    parse_prompt_attention,
    strip_comments,
)

PIECES = st.sampled_from(list("()[]:|\\<>,. 0123456789abc#\n=")
                         + [" AND ", " BREAK ", ":0.5", ":1.2)", "[a:b:", "<lora:x:1>", "\\(", "e-3", "-",
                            "[a|b]"])
SOUP = st.lists(PIECES, max_size=40).map("".join)
# Text with no syntax at all: every function must hand it back untouched.
PLAIN = st.text(alphabet="abc xyz,.!0123456789\n", max_size=40)


@settings(max_examples=400, deadline=None)
@given(SOUP)
def test_attention_never_raises_and_is_well_formed(text):
    runs = parse_prompt_attention(text)
    assert runs and all(isinstance(t, str) and isinstance(w, float | int) for t, w in runs)
    # No characters appear from nowhere: every run's text comes from the input (minus escapes/brackets).
    assert sum(len(t) for t, w in runs if w != -1) <= len(text)
    # Equal-weight neighbours are always merged.
    assert all(a[1] != b[1] for a, b in itertools.pairwise(runs))
    # The -1 marker is only ever a lone BREAK (text never gets weight -1 without a ":-1" in the input).
    if ":-" not in text:
        assert all(t == "BREAK" for t, w in runs if w == -1)
    assert sum(1 for t, w in runs if w == -1) <= text.count("BREAK")


@settings(max_examples=200, deadline=None)
@given(PLAIN)
def test_plain_text_passes_through_every_function(text):
    assert parse_prompt_attention(text) == [[text, 1.0]]
    assert get_learned_conditioning_prompt_schedules([text], 7) == [[[7, text]]]
    assert get_multicond_prompt_list([text])[1] == [text.rstrip()]
    assert check_prompt_syntax(text) == []
    assert strip_comments(text) == text


@settings(max_examples=400, deadline=None)
@given(SOUP, st.integers(1, 40), st.one_of(st.none(), st.integers(1, 30)), st.booleans())
def test_schedules_never_raise_and_end_at_the_last_step(text, steps, hires, old):
    (schedule,) = get_learned_conditioning_prompt_schedules([text], steps, hires, old)
    last = hires if hires is not None and not old else steps
    assert schedule and schedule[-1][0] == last
    ends = [s for s, _ in schedule]
    assert ends == sorted(set(ends)) and all(1 <= s <= last for s in ends)
    assert all(isinstance(t, str) for _, t in schedule)
    # Only square brackets edit prompts: without '[' the text is the same at every step.
    if "[" not in text:
        assert {t for _, t in schedule} <= {text}


@settings(max_examples=300, deadline=None)
@given(st.lists(SOUP, min_size=1, max_size=3))
def test_multicond_networks_and_reports_never_raise(prompts):
    res, flat, index = get_multicond_prompt_list(prompts)
    assert len(res) == len(prompts)
    assert all(0 <= i < len(flat) for r in res for i, _ in r)
    assert all(flat[i] == t for t, i in index.items()) and len(index) == len(flat)
    assert all(len(r) == p.count(" AND ") + 1 for r, p in zip(res, prompts) if "AND AND" not in p)
    cleaned, _ = parse_prompts(prompts)
    assert all("<lora:" not in c for c in cleaned)
    assert all("#" not in line for line in strip_comments(prompts[0]).splitlines())
    issues = check_prompt_syntax(prompts[0])
    assert all(0 <= i.position < len(prompts[0]) and i.message for i in issues)
    assert [i.position for i in issues] == sorted(i.position for i in issues)
