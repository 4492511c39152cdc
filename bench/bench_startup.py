"""Start-up as a user has it: `launch.py --skip-install --api` on a data folder that holds the demo checkpoint,
a free port; we time the process start to the first HTTP 200 on / (the UI page) and to the first image
(POST /sdapi/v1/txt2img sent as soon as the page answers). The reference is what a start that imports its
libraries first pays: a bare Python process importing torch, diffusers, transformers, gradio and fastapi.
The server answers before it imports diffusers/transformers (they load with the model, after the page
answers), so the first row should stay below 1.0x. Runs alternate with the reference.

The project's .py files are byte-compiled first (`compileall`), as after an install and a first start: a
machine with PYTHONDONTWRITEBYTECODE set would otherwise compile ~200 files on every start.

    venv/bin/python bench/bench_startup.py [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import Row, format_table, ratio_row  # noqa: E402

IMPORTS = "import torch, diffusers, transformers, gradio, fastapi"
ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}


def _env() -> dict:
    return {**os.environ, **ENV}


def import_floor() -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a bare process importing the libraries."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORTS], cwd=ROOT, env=_env(), check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _get(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def start_once(timeout: float = 900) -> tuple[float, float, float]:
    """(seconds to the first 200 on /, seconds to the first image, CPU seconds the server used until that
    first 200) for one fresh server process. CPU seconds hardly move with machine load, wall seconds do."""
    from tests.helpers.server import free_port, keep_demo_checkpoint, seed_demo_into

    with tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
        data = Path(tmp)
        seeded = seed_demo_into(data)  # a user's second start: the demo checkpoint is on disk already
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(data / "server.log", "w")
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(ROOT / "launch.py"), "--skip-install", "--api", "--port",
                                 str(port), "--data-dir", str(data), "--no-download-sd-model"],
                                cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT)
        try:
            while not _get(url + "/"):
                if proc.poll() is not None or time.perf_counter() - start > timeout:
                    raise RuntimeError(f"server did not answer: {(data / 'server.log').read_text()[-500:]}")
                time.sleep(0.1)
            first_200 = time.perf_counter() - start
            cpu_200 = cpu_seconds(proc.pid)
            payload = {"prompt": "a lighthouse", "steps": 2, "width": 64, "height": 64, "seed": 1,
                       "sampler_name": "Euler", "save_images": False}
            request = urllib.request.Request(url + "/sdapi/v1/txt2img", data=json.dumps(payload).encode(),
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                assert len(json.loads(resp.read())["images"]) == 1
            first_image = time.perf_counter() - start
            if seeded is not None:
                keep_demo_checkpoint(seeded)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
    return first_200, first_image, cpu_200


def byte_compile() -> None:
    """Write the project's .pyc files (a user's second start has them; PYTHONDONTWRITEBYTECODE would not)."""
    import compileall

    for folder in ("modules", "webui", "extensions"):
        compileall.compile_dir(str(ROOT / folder), quiet=1, workers=0)
    compileall.compile_file(str(ROOT / "launch.py"), quiet=1)


def measure_startup(repeats: int) -> list[Row]:
    byte_compile()
    floors, floor_cpu, to_200, to_image, cpu_200 = [], [], [], [], []
    loads = [os.getloadavg()[0]]
    for i in range(repeats):
        order = ("floor", "server") if i % 2 == 0 else ("server", "floor")
        for kind in order:
            if kind == "floor":
                wall, cpu = import_floor()
                floors.append(wall)
                floor_cpu.append(cpu)
            else:
                a, b, c = start_once()
                to_200.append(a)
                to_image.append(b)
                cpu_200.append(c)
            loads.append(os.getloadavg()[0])
    # Wall seconds swing with the machine's load (2 shared cores here): the 1-minute load average says how much.
    note = (f"launch.py --skip-install --api, demo checkpoint on disk, .pyc present, {repeats} repeats, "
            f"load average {min(loads):.1f}..{max(loads):.1f}; reference: python -c '{IMPORTS}'")
    return [ratio_row("start-up to first HTTP 200 (/)", to_200, floors, "s", 1.0, note),
            ratio_row("start-up to first HTTP 200 (/), CPU seconds", cpu_200, floor_cpu, "s", 1.0,
                      note + "; user+system CPU of the server process until then vs the reference's"),
            ratio_row("start-up to first image (API, 64x64, 2 steps)", to_image, floors, "s", 1.0, note)]


def measure(quick: bool) -> list[Row]:
    return measure_startup(1 if quick else 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(format_table(measure_startup(args.repeats)))


if __name__ == "__main__":
    main()
