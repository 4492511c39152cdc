"""Start-up as a user has it: `launch.py --skip-install --api` on a data folder that holds the demo checkpoint,
a free port; we time the process start to the first HTTP 200 on / (the UI page) and to the first image
(POST /sdapi/v1/txt2img sent as soon as the page answers). The reference is the floor any start pays:
a bare Python process importing torch, diffusers, gradio and fastapi. Runs alternate with the reference.

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


def import_floor() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORTS], cwd=ROOT, env=_env(), check=True, capture_output=True)
    return time.perf_counter() - start


def _get(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def start_once(timeout: float = 240) -> tuple[float, float]:
    """(seconds to the first 200 on /, seconds to the first image) for one fresh server process."""
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
    return first_200, first_image


def measure_startup(repeats: int) -> list[Row]:
    floors, to_200, to_image = [], [], []
    for i in range(repeats):
        order = ("floor", "server") if i % 2 == 0 else ("server", "floor")
        for kind in order:
            if kind == "floor":
                floors.append(import_floor())
            else:
                a, b = start_once()
                to_200.append(a)
                to_image.append(b)
    note = (f"launch.py --skip-install --api, demo checkpoint on disk, {repeats} repeats; reference: python -c "
            f"'{IMPORTS}'")
    return [ratio_row("start-up to first HTTP 200 (/)", to_200, floors, "s", 1.0, note),
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
