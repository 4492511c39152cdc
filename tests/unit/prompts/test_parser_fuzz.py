"""Random bracket soups: the parser functions never raise and always return well-formed data."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from modules.prompts.extra_networks import parse_prompts
from modules.prompts.parser import (
    get_learned_conditioning_prompt_schedules,
    get_multicond_prompt_list,
    parse_prompt_attention,
    strip_comments,
)

PIECES = st.sampled_from(list("()[]:|\\<>,. 0123456789abc#\n") + [" AND ", " BREAK ", ":0.5", ":1.2)", "[a:b:",
                                                                   "<lora:x:1>", "\\(", "e-3", "-"])
SOUP = st.lists(PIECES, max_size=40).map("".join)


@settings(max_examples=400, deadline=None)
@given(SOUP)
def test_attention_never_raises_and_keeps_text(text):
    runs = parse_prompt_attention(text)
    assert runs and all(isinstance(t, str) and isinstance(w, float | int) for t, w in runs)
    # No characters appear from nowhere: every run's text comes from the input (minus escapes/brackets).
    assert sum(len(t) for t, w in runs if w != -1) <= len(text)


@settings(max_examples=400, deadline=None)
@given(SOUP, st.integers(1, 40), st.one_of(st.none(), st.integers(1, 30)), st.booleans())
def test_schedules_never_raise_and_end_at_the_last_step(text, steps, hires, old):
    (schedule,) = get_learned_conditioning_prompt_schedules([text], steps, hires, old)
    assert schedule and schedule[-1][0] == (hires if hires is not None and not old else steps)
    assert [s for s, _ in schedule] == sorted({s for s, _ in schedule})
    assert all(isinstance(t, str) for _, t in schedule)


@settings(max_examples=300, deadline=None)
@given(st.lists(SOUP, min_size=1, max_size=3))
def test_multicond_and_networks_never_raise(prompts):
    res, flat, index = get_multicond_prompt_list(prompts)
    assert len(res) == len(prompts)
    assert all(0 <= i < len(flat) for r in res for i, _ in r)
    assert all(flat[i] == t for t, i in index.items())
    cleaned, _ = parse_prompts(prompts)
    assert all("<lora:" not in c for c in cleaned)
    assert all("#" not in line for line in strip_comments(prompts[0]).splitlines())


def test_unparseable_prompt_is_used_verbatim():
    assert get_learned_conditioning_prompt_schedules(["a | b [c:d:0.5]"], 10) == [[[10, "a | b [c:d:0.5]"]]]


def test_deep_nesting_does_not_escape():
    text = "[" * 3000 + "a:b:0.5" + "]" * 3000
    (schedule,) = get_learned_conditioning_prompt_schedules([text], 10)
    assert schedule[-1][0] == 10
    assert parse_prompt_attention("(" * 5000 + "x")[0][0] == "x"


def test_editing_alternation_and_hires_timeline():
    assert get_learned_conditioning_prompt_schedules(["[a:b:0.5]"], 10) == [[[5, "a"], [10, "b"]]]
    assert get_learned_conditioning_prompt_schedules(["[a|b]"], 3) == [[[1, "a"], [2, "b"], [3, "a"]]]
    # hires pass of 4 steps after 10 base steps: 12 (integer) means step 2 of the hires pass
    assert get_learned_conditioning_prompt_schedules(["[a:b:12]"], 10, 4) == [[[2, "a"], [4, "b"]]]
    assert get_learned_conditioning_prompt_schedules(["[a:b:1.5]"], 10, 4) == [[[2, "a"], [4, "b"]]]
