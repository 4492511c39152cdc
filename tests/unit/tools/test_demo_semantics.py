"""Does the demo model draw what a prompt says? evaluate.py's checks as tests, 10 fixed seeds each.

Issue 16's bar: each check (red on white, blue vs red, prompt weights, prompt editing, AND, round vs
square) passes on at least 8 of the 10 seeds. On the trained file they must pass; on the old random demo
model (demo-tiny, noise) the bar must fail, or the checks would prove nothing. The trained file is looked
for at evaluate.SHIPPED_CHECKPOINT; without it those tests skip (train it with tools/demo_model/train.py,
see docs/demo_model.md). 64 px runs by default; 128 px (4x the cost) with -m slow.
"""
from __future__ import annotations

import pytest

from tools.demo_model.evaluate import CHECKS, PASS_SEEDS, SHIPPED_CHECKPOINT, Row, evaluate, load

SEEDS = 10


def rows_by_name(rows: list[Row]) -> dict[str, Row]:
    return {r.name: r for r in rows}


@pytest.fixture(scope="module")
def trained_model():
    if not SHIPPED_CHECKPOINT.is_file():
        pytest.skip(f"the trained demo model is not at {SHIPPED_CHECKPOINT} "
                    "(python -m tools.demo_model.train writes it; docs/demo_model.md)")
    return load(SHIPPED_CHECKPOINT)


@pytest.fixture(scope="module")
def trained_64(trained_model):
    return rows_by_name(evaluate(trained_model, size=64, seeds=SEEDS))


@pytest.fixture(scope="module")
def random_demo_64(tmp_path_factory):
    from modules.pipelines.demo import ensure_demo_checkpoint

    model = load(ensure_demo_checkpoint(tmp_path_factory.mktemp("demo-tiny")))
    # noise needs no 20 steps to be noise: 4 keep this cheap; the checks and seeds are the same
    return rows_by_name(evaluate(model, size=64, seeds=SEEDS, steps=4))


# Checks the shipped model does not pass yet (strict: once one passes, the test says so). None since run r18
# (2026-12-03): every check passes on at least 9 of 10 seeds at 64 and 128 px.
KNOWN_FAILING_64: dict = {}


@pytest.mark.parametrize("check", [pytest.param(c.name, marks=KNOWN_FAILING_64.get(c.name, ())) for c in CHECKS])
def test_the_trained_demo_model_passes_at_64_px(trained_64, check):
    row = trained_64[check]
    assert row.passed >= PASS_SEEDS, f"{check}: {row.passed}/{SEEDS} seeds ({row.measure_name} {row.mean:.3f})"


@pytest.mark.slow
def test_the_trained_demo_model_passes_at_128_px(trained_model):
    # every check, round vs square included (r16: 9/10)
    rows = evaluate(trained_model, size=128, seeds=SEEDS)
    failed = [f"{r.name}: {r.passed}/{SEEDS}" for r in rows if r.passed < PASS_SEEDS]
    assert not failed


def test_the_checks_fail_on_the_old_random_demo_model(random_demo_64):
    passed = {name: row.passed for name, row in random_demo_64.items()}
    assert set(passed) == {c.name for c in CHECKS}
    assert min(passed.values()) < PASS_SEEDS, passed  # the bar as a whole fails on noise
    # The checks that name a colour fail outright. The comparisons (weights, prompt editing, round vs
    # square) need not: a random net answers a prompt change with some consistent shift, which is the
    # right way round by chance (the weights check passes 10/10 on demo-tiny), so they only mean
    # something next to the absolute ones.
    assert passed["red circle is red on white"] < PASS_SEEDS and passed["blue vs red shifts the hue"] < PASS_SEEDS
