"""bench_memory's peak RSS is the child's own: Linux carries getrusage's ru_maxrss over fork and exec, so a
child measured that way reads at least its parent's peak (every policy then showed the parent's 6.6 GB)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is Linux's")
def test_a_child_reports_its_own_peak_rss_not_its_parents():
    ballast = bytearray(600 * 2**20)
    for i in range(0, len(ballast), 4096):  # touch every page: resident, so the parent's peak is >= 600 MiB
        ballast[i] = 1
    code = "from bench.bench_memory import peak_rss_mib; print(peak_rss_mib())"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert 5 < float(out.stdout.strip()) < 300
    del ballast
