"""The one benchmark command: every bench's rows in one table, each a ratio of ours to a reference measured
in the same process (or the same parent, for start-up and memory) with alternating runs and the spread.

    venv/bin/python bench/run.py [--quick] [--only txt2img,api] [--out bench/results] [--results-md FILE]

Prints the table and writes bench/results/<date>.json (machine, load average at start and end, command,
rows). One failing group prints its error in the table; the others still run. --quick: fewer repeats and
the small sizes (no 512x512 SD 1.5 rows, small model files), sized to finish in a few minutes on a CPU.
The machine may be shared: read the load average next to the figures.
"""
from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for var, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("GRADIO_ANALYTICS_ENABLED", "False"),
                   ("DIFFUSERS_VERBOSITY", "error"), ("TRANSFORMERS_VERBOSITY", "error")):
    os.environ.setdefault(var, value)

from bench._common import (  # noqa: E402
    Row,
    format_table,
    guarded,
    machine_info,
    results_document,
    write_results,
)

Measure = Callable[[bool], list[Row]]
# name -> the module whose `measure(quick)` gives the rows (imported only when its group runs), or a callable.
GROUPS: tuple[tuple[str, str | Measure], ...] = (
    ("startup", "bench.bench_startup"),
    ("memory", "bench.bench_memory"),
    ("txt2img", "bench.bench_txt2img"),
    ("cfg", "bench.bench_cfg"),
    ("performance", "bench.bench_compile"),
    ("api", "bench.bench_api"),
    ("encode", "bench.bench_encode"),
    ("lora", "bench.bench_lora_rows"),
    ("controlnet", "bench.bench_controlnet"),
    ("switch", "bench.bench_switch"),
    ("previews", "bench.bench_previews"),
    ("page", "bench.bench_idle_page"),
)


def resolve(target: str | Measure) -> Measure:
    return importlib.import_module(target).measure if isinstance(target, str) else target


def run_groups(groups: Sequence[tuple[str, str | Measure]], quick: bool,
               log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> list[Row]:
    """Every group's rows in order; a group that raises (import included) becomes one error row."""
    rows: list[Row] = []
    for name, target in groups:
        start = time.perf_counter()
        log(f"[bench] {name} ...")
        got = guarded(name, lambda t=target: resolve(t)(quick))
        rows += got
        failed = sum(1 for r in got if r.error)
        log(f"[bench] {name}: {len(got)} rows{f', {failed} failed' if failed else ''}, "
            f"{time.perf_counter() - start:.0f} s")
    return rows


def header(document: dict) -> str:
    m = document["machine"]
    load = lambda values: "/".join(f"{v:.1f}" for v in values) if values else "?"  # noqa: E731
    gpu = f", GPU {m['cuda']}" if m["cuda"] else ", no GPU"
    gpu += f", {m['extra'].get('threads', '?')} torch threads"
    return (f"{document['date']}: {m['cpu']}, {m['cores']} cores{gpu}, torch {m['torch']}, Python {m['python']}; "
            f"load average (1/5/15 min) {load(m['load_start'])} at start, {load(m['load_end'])} at end; "
            f"{document['seconds']:.0f} s; command: {document['command']}")


def results_markdown(document: dict, table: str) -> str:
    return (f"# Benchmark results\n\nLatest run of `{document['command']}`.\n\n{header(document)}\n\n"
            "Each row: ours vs the reference in the same process, medians of alternating runs; ratio = the "
            "median of the paired runs' ours / reference (below 1 is faster or smaller); spread = lowest..highest "
            "ratio of the paired runs. "
            "The machine is shared: under a high load average the timings are noisy, the ratios less so.\n\n"
            f"{table}\n")


def main(argv: Sequence[str] | None = None, groups: Sequence[tuple[str, str | Measure]] = GROUPS) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized: fewer repeats, small sizes and files")
    parser.add_argument("--only", default="", help="comma-separated group names: " + ",".join(n for n, _ in groups))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder of the JSON results")
    parser.add_argument("--results-md", type=Path, default=None, help="also write the table and machine here")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in this process (default: 1 with --quick, torch's own otherwise)")
    args = parser.parse_args(argv)
    threads = args.threads if args.threads is not None else (1 if args.quick else 0)
    if threads:
        import torch

        # On a shared 2-core box small models run many times faster on one thread (no contention);
        # both sides of every ratio run with the same setting.
        torch.set_num_threads(threads)
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    unknown = wanted - {n for n, _ in groups}
    if unknown:
        parser.error(f"unknown group(s): {', '.join(sorted(unknown))}")
    chosen = [(n, t) for n, t in groups if not wanted or n in wanted]

    machine = machine_info()
    import torch

    machine.extra["threads"] = torch.get_num_threads()
    command = "python bench/run.py " + shlex.join(list(argv if argv is not None else sys.argv[1:]))
    print(f"[bench] load average at start {'/'.join(f'{v:.1f}' for v in machine.load_start)}, "
          f"{machine.cores} cores", file=sys.stderr, flush=True)
    start = time.perf_counter()
    rows = run_groups(chosen, args.quick)
    machine = type(machine)(**{**machine.__dict__, "load_end": os.getloadavg()})
    document = results_document(rows, machine, command.strip(), args.quick, time.perf_counter() - start)
    table = format_table(rows)
    print(header(document))
    print(table)
    path = write_results(document, args.out)
    print(f"results: {path}")
    if args.results_md:
        args.results_md.write_text(results_markdown(document, table))
    return 1 if rows and all(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
