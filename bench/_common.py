"""What every bench shares: the Row a measurement gives, alternating timed runs, the table and the JSON.

A Row is one ratio measured in one process: `ours` and `reference` in `unit`, `ratio` = ours / reference
(medians), `spread` = the lowest and highest ratio of the paired runs (run i of ours against run i of the
reference), so a reader sees how much machine load moved the figure.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Row:
    """One benchmark figure: ours vs reference in `unit`; `error` set (and the numbers None) when it failed."""

    name: str
    ours: float | None
    reference: float | None
    unit: str
    ratio: float | None = None
    spread: tuple[float, float] | None = None
    note: str = ""
    error: str | None = None


@dataclass(frozen=True)
class Machine:
    """Where and when the figures were taken; load averages matter: the machine is shared."""

    cpu: str
    cores: int
    torch: str
    cuda: str | None
    python: str
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float] | None = None
    extra: dict = field(default_factory=dict)


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of fn takes (wall clock)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Call each runner `repeats` times, order reversed every other round (ABBA), so load hits all alike.

    Each runner returns its own measurement (seconds, bytes, ...)."""
    items = list(runs.items())
    out: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(repeats):
        for name, fn in (items if i % 2 == 0 else items[::-1]):
            out[name].append(fn())
    return out


def ratio_row(name: str, ours: Sequence[float], reference: Sequence[float], unit: str, scale: float = 1.0,
              note: str = "") -> Row:
    """A Row from paired samples: medians (times scale, e.g. 1000 for ms), the median of the paired ratios and
    their spread.

    Runs alternate, so sample i of each side ran under the same load; the ratio of each pair cancels that load,
    and their median is the figure. (The ratio of the two medians mixes samples from different moments; under a
    drifting load it can even fall outside the spread of the pairs.) Unpaired samples fall back to it."""
    mine, base = statistics.median(ours), statistics.median(reference)
    pairs = [a / b for a, b in zip(ours, reference) if b] if len(ours) == len(reference) else []
    ratio = statistics.median(pairs) if pairs else (mine / base if base else None)
    return Row(name=name, ours=mine * scale, reference=base * scale, unit=unit, ratio=ratio,
               spread=(min(pairs), max(pairs)) if pairs else None, note=note)


def slope_samples(times: dict[tuple[str, int], list[float]], kind: str, short: int, long: int) -> list[float]:
    """Per-step seconds of each repeat: (long run - short run) / (long - short), paired by repeat index."""
    return [(b - a) / (long - short) for a, b in zip(times[(kind, short)], times[(kind, long)])]


def alternate_slopes(runners: dict[str, Callable[[int], float]], short: int, long: int, repeats: int,
                     warm_up: bool = True) -> dict[str, list[float]]:
    """{name: per-step seconds of each repeat}. Each runner takes a step count and returns seconds; after one
    warm-up `short` run each (kernel selection, lazy imports, a compile; skipped with warm_up=False when the
    caller's runs already warmed them), every repeat times a `short` and a `long` run of each runner, the
    runners' order reversed every other repeat (ABBA)."""
    names = list(runners)
    for name in names if warm_up else ():
        runners[name](short)
    times: dict[tuple[str, int], list[float]] = {(name, n): [] for name in names for n in (short, long)}
    for i in range(repeats):
        for n in (short, long):
            for name in (names if i % 2 == 0 else names[::-1]):
                times[(name, n)].append(runners[name](n))
    return {name: slope_samples(times, name, short, long) for name in names}


def error_row(name: str, exc: BaseException) -> Row:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {Path(last[0].filename).name}:{last[0].lineno}" if last else ""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line: it sits in a table cell
    return Row(name=name, ours=None, reference=None, unit="", error=text[:300] + where)


def guarded(name: str, fn: Callable[[], list[Row]]) -> list[Row]:
    """fn's rows, or one error row named `name`: one failing measurement never stops the others."""
    try:
        return list(fn())
    except Exception as exc:  # noqa: BLE001 - reported in the table, the run goes on
        return [error_row(name, exc)]


def machine_info() -> Machine:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return Machine(cpu=cpu, cores=os.cpu_count() or 0, torch=torch.__version__, cuda=cuda,
                   python=platform.python_version(), load_start=os.getloadavg())


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table: one line per row, errors shown in place of the numbers."""
    lines = ["| row | ours | reference | unit | ratio | spread | note |", "|---|---:|---:|---|---:|---|---|"]
    for r in rows:
        if r.error:
            lines.append(f"| {r.name} | - | - | - | - | - | ERROR {r.error.replace('|', '/')} |")
            continue
        ratio = f"{r.ratio:.3g}" if r.ratio is not None else "-"
        spread = f"{r.spread[0]:.2f}..{r.spread[1]:.2f}" if r.spread else "-"
        lines.append(f"| {r.name} | {_num(r.ours)} | {_num(r.reference)} | {r.unit} | {ratio} | {spread} "
                     f"| {r.note.replace('|', '/')} |")
    return "\n".join(lines)


def results_document(rows: Sequence[Row], machine: Machine, command: str, quick: bool, seconds: float) -> dict:
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "command": command, "quick": quick,
            "seconds": round(seconds, 1), "machine": asdict(machine), "rows": [asdict(r) for r in rows]}


def write_results(document: dict, folder: Path) -> Path:
    """bench/results/<date>.json (a later run on the same day replaces it)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{document['date'][:10]}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=1) + "\n")
    os.replace(tmp, path)
    return path
