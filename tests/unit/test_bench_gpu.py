"""bench/bench_gpu.py is the one command a session with a lent GPU runs, inside minutes it cannot get back:
it must work the first time. Here, on the CPU (--allow-cpu) with the demo checkpoint's small layout, every
part runs through the same code, rows reach --out as they come, the deadline skips what is left, and a
child stopped at the deadline takes its own children with it."""
from __future__ import annotations

import json
import time

import psutil
import pytest
import torch

from bench import bench_gpu


def rows_of(out) -> dict[str, dict]:
    return {row["name"]: row for row in json.loads((out / "results.json").read_text())["rows"]}


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here: the script would run for real")
def test_it_refuses_to_run_without_cuda_unless_asked(tmp_path, capsys):
    assert bench_gpu.main(["--out", str(tmp_path)]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_speed_and_memory_parts_give_their_rows_on_the_cpu(tmp_path):
    code = bench_gpu.main(["--allow-cpu", "--archs", "demo", "--parts", "speed,memory", "--steps", "4",
                           "--short", "2", "--repeats", "1", "--memory-steps", "2", "--out", str(tmp_path)])
    assert code == 0
    rows = rows_of(tmp_path)
    errors = {name: row["error"] for name, row in rows.items() if row["error"]}
    assert not errors
    expected = ["per step, demo 64x64 float32: ours vs diffusers",
                "end to end, demo 64x64 float32, 4 steps: ours vs diffusers",
                "CFG 1 vs CFG 7 per step, demo 64x64 float32",
                "peak RSS, normal", "peak RSS, medvram", "peak RSS, lowvram"]
    assert [name for name in expected if name not in rows] == []
    assert rows["peak RSS, medvram"]["note"].endswith("reference: diffusers model offload")
    assert rows["peak RSS, lowvram"]["note"].endswith("reference: diffusers sequential offload")
    for name in expected:  # numbers, not their size: a slope from one repeat of 4 vs 2 steps is noise here
        assert all(isinstance(rows[name][key], float) for key in ("ours", "reference", "ratio")), name
    assert all(rows[f"peak RSS, {mode}"]["ours"] > 100 for mode in ("normal", "medvram", "lowvram"))
    assert "it/s ours" in rows[expected[0]]["note"]
    table = (tmp_path / "results.md").read_text()
    assert "| per step, demo 64x64 float32: ours vs diffusers |" in table and "torch threads" in table
    assert "=== memory, demo:" in (tmp_path / "bench_gpu.log").read_text()


def test_the_deadline_skips_what_is_left(tmp_path):
    assert bench_gpu.main(["--allow-cpu", "--archs", "demo", "--deadline", "0", "--out", str(tmp_path)]) == 1
    rows = rows_of(tmp_path)
    assert set(rows) == {"speed, demo", "memory, demo", "compile, demo"}
    assert all(row["error"] == "skipped: the run's --deadline was reached" for row in rows.values())


def test_a_child_stopped_at_the_deadline_leaves_no_process_behind(tmp_path):
    # the memory part runs its jobs in children of its own (six of them, ~45 s here): the 21 s deadline stops
    # it while some run, and they must go with it
    def ours() -> set[int]:
        found = set()
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if "--child" in cmdline and ("bench/bench_gpu.py" in cmdline or "bench/bench_memory.py" in cmdline):
                found.add(proc.pid)
        return found

    before = ours()
    start = time.monotonic()
    bench_gpu.main(["--allow-cpu", "--archs", "demo", "--parts", "memory", "--memory-steps", "2",
                    "--deadline", "21", "--out", str(tmp_path)])
    assert time.monotonic() - start < 60
    assert rows_of(tmp_path)["memory, demo"]["error"] == "stopped at the run's --deadline"
    time.sleep(0.5)
    assert ours() - before == set()
