"""Targeted parser behaviour beyond the shared cases: escapes, fallbacks, hires timelines, reports."""
from __future__ import annotations

from modules.prompts.parser import (
    check_prompt_syntax,
    get_learned_conditioning_prompt_schedules,
    get_multicond_prompt_list,
    parse_prompt_attention,
)


def schedule(prompt, steps, hires=None, old=False):
    (result,) = get_learned_conditioning_prompt_schedules([prompt], steps, hires, old)
    return result


def test_escapes_and_lone_backslash():
    assert parse_prompt_attention(r"a\\b") == [["a\\b", 1.0]]
    assert parse_prompt_attention(r"\[x\]") == [["[x]", 1.0]]
    # A lone backslash vanishes (A1111), so "a\b" gives the same tokens as "ab".
    assert parse_prompt_attention(r"a\b") == [["ab", 1.0]]


def test_bad_weight_keeps_text_and_break_is_a_whole_word():
    assert parse_prompt_attention("(a:1.2.3)") == [["a:1.2.3)", 1.1]]
    assert parse_prompt_attention("a BREAK\nb") == [["a", 1.0], ["BREAK", -1], ["b", 1.0]]
    assert parse_prompt_attention("BREAKFAST") == [["BREAKFAST", 1.0]]


def test_unparseable_prompt_is_used_verbatim():
    assert schedule("a | b [c:d:0.5]", 10) == [[10, "a | b [c:d:0.5]"]]
    assert schedule("x \\\ny [a:b:2]", 4) == [[4, "x \\\ny [a:b:2]"]]  # backslash-newline escapes nothing
    assert schedule("trailing [a:b:2] \\", 4) == [[4, "trailing [a:b:2] \\"]]


def test_escaped_brackets_are_not_editing_syntax():
    assert schedule(r"\[a:b:2\] [c:d:2]", 4) == [[2, r"\[a:b:2\] c"], [4, r"\[a:b:2\] d"]]


def test_deep_nesting_does_not_escape():
    text = "[" * 3000 + "a:b:0.5" + "]" * 3000
    assert schedule(text, 10) == [[10, text]]
    assert parse_prompt_attention("(" * 5000 + "x")[0][0] == "x"
    assert check_prompt_syntax(text)[0].position == 0


def test_editing_alternation_and_hires_timeline():
    assert schedule("[a:b:0.5]", 10) == [[5, "a"], [10, "b"]]
    assert schedule("[a|b]", 3) == [[1, "a"], [2, "b"], [3, "a"]]
    # hires pass of 4 steps after 10 base steps: 12 (integer) means step 2 of the hires pass
    assert schedule("[a:b:12]", 10, 4) == [[2, "a"], [4, "b"]]
    assert schedule("[a:b:1.5]", 10, 4) == [[2, "a"], [4, "b"]]
    # old scheduling ignores the hires timeline and reads values < 1 as fractions
    assert schedule("[a:b:0.5]", 10, 4, old=True) == [[5, "a"], [10, "b"]]
    assert schedule("[a:b:3]", 10, 4, old=True) == [[3, "a"], [10, "b"]]


def test_exponent_and_sign_in_when():
    assert schedule("[a:b:1e1]", 20) == [[10, "a"], [20, "b"]]  # no '.', so an absolute step
    assert schedule("[a:b:-2]", 5) == [[5, "b"]]


def test_repeated_prompts_share_one_parse_but_keep_order():
    result = get_learned_conditioning_prompt_schedules(["[a:b:1]", "c", "[a:b:1]"], 2)
    assert result == [[[1, "a"], [2, "b"]], [[2, "c"]], [[1, "a"], [2, "b"]]]


def test_multicond_weights_and_newlines():
    res, flat, _ = get_multicond_prompt_list(["a:-0.5 AND\nb :2. AND c:.25 "])
    assert res == [[(0, -0.5), (1, 2.0), (2, 0.25)]]
    assert flat == ["a", "\nb", " c"]


def test_check_prompt_syntax_names_positions():
    assert check_prompt_syntax("a (cat:1.2) [dog:fox:0.5] [x|y]") == []
    found = {(i.position, i.message.split(" ")[0]) for i in check_prompt_syntax("a (b [c")}
    assert found == {(2, "'('"), (5, "'['")}
    (issue,) = check_prompt_syntax("a | b")
    assert issue.position == 2 and "'|'" in issue.message and str(issue).startswith("character 3:")
    (issue,) = check_prompt_syntax("x ] y")
    assert issue.position == 2 and "closes nothing" in issue.message
    (issue,) = check_prompt_syntax("[a:b:c:2]")
    assert issue.position == 0 and "kept as text" in issue.message
    (issue,) = check_prompt_syntax("(a:1.2.3)x)")
    assert issue.position == 3 and "1.2.3" in issue.message
