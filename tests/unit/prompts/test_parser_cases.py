"""Every case of tests/data/cases/prompt_syntax.json through the parser functions."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from modules.prompts import extra_networks
from modules.prompts.parser import (
    get_learned_conditioning_prompt_schedules,
    get_multicond_prompt_list,
    parse_prompt_attention,
)

# A copy of the team's case file kept in the repo, so a clone alone runs its tests.
CASES_FILE = Path(__file__).resolve().parents[2] / "data" / "cases" / "prompt_syntax.json"
CASES = json.loads(CASES_FILE.read_text(encoding="utf-8"))["cases"]


def by_function(name: str) -> list[dict]:
    return [c for c in CASES if c["function"] == name]


def assert_runs_equal(actual, expected):
    assert [r[0] for r in actual] == [e[0] for e in expected]
    assert [r[1] for r in actual] == pytest.approx([e[1] for e in expected], abs=1e-9)


def test_all_cases_are_covered():
    known = {"parse_prompt_attention", "get_learned_conditioning_prompt_schedules",
             "get_multicond_prompt_list", "extra_networks.parse_prompt", "extra_networks.parse_prompts"}
    assert {c["function"] for c in CASES} <= known and len(CASES) >= 60


@pytest.mark.parametrize("case", by_function("parse_prompt_attention"), ids=lambda c: c["id"])
def test_parse_prompt_attention(case):
    assert_runs_equal(parse_prompt_attention(case["inputs"]["text"]), case["expected"])


SCHEDULE_CASES = by_function("get_learned_conditioning_prompt_schedules")


@pytest.mark.parametrize("case", SCHEDULE_CASES, ids=lambda c: c["id"])
def test_schedules(case):
    i = case["inputs"]
    got = get_learned_conditioning_prompt_schedules(i["prompts"], i["base_steps"], i["hires_steps"],
                                                    i["use_old_scheduling"])
    got = [[list(entry) for entry in sched] for sched in got]
    # A few cases record what A1111 really does beside its doctest's wish; the file accepts either.
    assert got == case["expected"] or got == case.get("reference_actual")


@pytest.mark.parametrize("case", by_function("get_multicond_prompt_list"), ids=lambda c: c["id"])
def test_multicond(case):
    res_indexes, flat, indexes = get_multicond_prompt_list(case["inputs"]["prompts"])
    want = case["expected"]
    assert [[list(pair) for pair in r] for r in res_indexes] == want["res_indexes"]
    assert flat == want["prompt_flat_list"] and indexes == want["prompt_indexes"]


def as_data(networks):
    return {name: [{"items": p.items, "positional": p.positional, "named": p.named} for p in calls]
            for name, calls in networks.items()}


@pytest.mark.parametrize("case", by_function("extra_networks.parse_prompt"), ids=lambda c: c["id"])
def test_extra_networks_parse_prompt(case):
    text, networks = extra_networks.parse_prompt(case["inputs"]["prompt"])
    assert text == case["expected"]["prompt"] and as_data(networks) == case["expected"]["networks"]


@pytest.mark.parametrize("case", by_function("extra_networks.parse_prompts"), ids=lambda c: c["id"])
def test_extra_networks_parse_prompts(case):
    texts, networks = extra_networks.parse_prompts(case["inputs"]["prompts"])
    assert texts == case["expected"]["prompts"] and as_data(networks) == case["expected"]["networks"]
