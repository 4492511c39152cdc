"""bench/run.py cannot silently rot: its table and JSON come out of fake groups (one failing), a real cheap
ratio row is measured with the shared helpers, and every registered group still exposes measure(quick)."""
from __future__ import annotations

import importlib
import json
import time

import pytest

from bench import run
from bench._common import Row, alternate, ratio_row, slope_samples, timed


def fake_rows(quick: bool) -> list[Row]:
    return [Row("fake row", 2.0, 4.0, "ms", 0.5, (0.4, 0.6), f"quick={quick}")]


def broken(quick: bool) -> list[Row]:
    raise ValueError("no such\nmodel")


def cheap_real_row(quick: bool) -> list[Row]:
    # a real alternating measurement: sleeping 4x as long reads as a ratio well above 1 (wide bounds: a
    # loaded box adds wake-up delay to both sides)
    times = alternate({"ours": lambda: timed(lambda: time.sleep(0.04)),
                       "ref": lambda: timed(lambda: time.sleep(0.01))}, 3)
    return [ratio_row("sleep 40 ms vs 10 ms", times["ours"], times["ref"], "ms", 1000)]


def test_run_prints_one_table_writes_the_json_and_a_failing_group_does_not_stop_the_others(tmp_path, capsys):
    groups = (("fake", fake_rows), ("broken", broken), ("cheap", cheap_real_row))
    md = tmp_path / "RESULTS.md"
    code = run.main(["--quick", "--out", str(tmp_path), "--results-md", str(md), "--threads", "1"], groups=groups)
    assert code == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| row | ours | reference | unit | ratio | spread |")
    assert "| fake row | 2 | 4 | ms | 0.5 | 0.40..0.60 | quick=True |" in table
    assert any(line.startswith("| broken |") and "ERROR ValueError: no such model" in line for line in table)
    assert any(line.startswith("| sleep 40 ms vs 10 ms |") for line in table), "the group after a failure ran"
    assert "load average" in out and "command: python bench/run.py --quick" in out

    [written] = list(tmp_path.glob("*.json"))
    doc = json.loads(written.read_text())
    assert written.name == f"{doc['date'][:10]}.json" and doc["quick"] is True
    assert len(doc["machine"]["load_start"]) == 3 and doc["machine"]["load_end"] and doc["machine"]["cores"] >= 1
    assert doc["machine"]["torch"] and doc["machine"]["cpu"]
    names = [r["name"] for r in doc["rows"]]
    assert names == ["fake row", "broken", "sleep 40 ms vs 10 ms"]
    assert doc["rows"][1]["error"].startswith("ValueError") and doc["rows"][1]["ratio"] is None
    sleep = doc["rows"][2]
    assert 1.0 < sleep["ratio"] < 8 and sleep["spread"][0] <= sleep["ratio"] <= sleep["spread"][1]
    assert "| fake row |" in md.read_text() and doc["machine"]["cpu"] in md.read_text()


def test_only_selects_groups_and_rejects_unknown_names(tmp_path, capsys):
    groups = (("fake", fake_rows), ("broken", broken))
    assert run.main(["--only", "fake", "--out", str(tmp_path), "--threads", "1"], groups=groups) == 0
    assert "broken" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        run.main(["--only", "nope", "--out", str(tmp_path)], groups=groups)


def test_slope_pairs_repeats_so_fixed_costs_cancel():
    # 1 s fixed + 0.5 s a step: runs of 2 and 6 steps give 0.5 s/step for each repeat
    times = {("ours", 2): [2.0, 2.2], ("ours", 6): [4.0, 4.2]}
    assert slope_samples(times, "ours", 2, 6) == [0.5, 0.5]


@pytest.mark.parametrize("name,module", [g for g in run.GROUPS if isinstance(g[1], str)])
def test_every_registered_group_exposes_measure(name, module):
    assert callable(importlib.import_module(module).measure), name


def test_step_seconds_is_the_median_interval_so_one_slow_step_does_not_move_it():
    from bench._step_clock import step_seconds

    ends = [10.0, 10.1, 10.2, 11.2, 11.3, 11.4]  # one step took 1 s (a load spike), the rest 0.1 s
    assert step_seconds(ends) == pytest.approx(0.1)
    assert step_seconds(ends, "mean") == pytest.approx(0.28)
    with pytest.raises(ValueError):
        step_seconds([1.0])


def test_per_step_rows_time_every_step_of_ours_and_of_diffusers_on_the_tiny_model():
    """The clocks on both sides see every step (the runners assert it) and the two per-step figures are of
    one size: the same UNet work, so neither side is timing something else."""
    from bench.bench_txt2img import measure_model

    per_step, end_to_end = measure_model("tiny", 64, 4, 1)
    assert per_step.name == "txt2img per step, tiny" and per_step.unit == "ms/step"
    assert 0.5 < per_step.ratio < 2.0, per_step
    assert end_to_end.reference > 3 * per_step.reference / 1000  # 4 steps plus fixed costs


def test_ratio_is_the_median_of_the_paired_runs_so_a_load_change_between_pairs_cancels():
    # Ours is 1% slower in every quiet pair; a load spike doubles one of ours (pair 3), and the load doubles
    # both sides for pairs 4-5. The ratio of the two medians reads 2.02 / 1.0; the pairs say 1.01.
    reference = [1.0, 1.0, 1.0, 2.0, 2.0]
    ours = [1.01, 1.01, 2.02, 2.02, 2.02]
    row = ratio_row("load", ours, reference, "s")
    assert row.ratio == pytest.approx(1.01)
    assert row.spread == pytest.approx((1.01, 2.02))
    assert row.ours == pytest.approx(2.02) and row.reference == pytest.approx(1.0)


def test_unpaired_samples_fall_back_to_the_ratio_of_medians():
    row = ratio_row("unpaired", [2.0, 2.0, 2.0], [1.0, 1.0], "s")
    assert row.ratio == pytest.approx(2.0) and row.spread is None
