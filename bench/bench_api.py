"""The same txt2img job direct (`run_generation`), through the HTTP API (POST /sdapi/v1/txt2img), through the UI
handler path and from a click in headless Chromium: each ratio is against the direct run, so it is what
the HTTP layer or the UI adds. One process serves the real app (bench_ui_overhead.start_app: uvicorn in a
thread, demo checkpoint); runs alternate so machine load hits each alike.

    venv/bin/python bench/bench_api.py [--size 64] [--steps 3] [--repeats 5] [--no-browser]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import bench_ui_overhead as ui  # noqa: E402  (sets the offline environment first)
from bench._common import Row, alternate, error_row, format_table, ratio_row  # noqa: E402


def time_http(url: str, size: int, steps: int) -> float:
    payload = {"prompt": "a lighthouse at dusk", "negative_prompt": "", "sampler_name": "Euler", "steps": steps,
               "width": size, "height": size, "cfg_scale": 7.0, "seed": 1234, "save_images": False}
    request = urllib.request.Request(url + "/sdapi/v1/txt2img", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as resp:
        body = json.loads(resp.read())
    elapsed = time.perf_counter() - start
    assert len(body["images"]) == 1, body
    return elapsed


def measure_api(size: int, steps: int, repeats: int, browser: bool = True, label: str = "") -> list[Row]:
    """The HTTP, UI-handler and browser rows for one size; `label` is added to the row names."""
    from webui.ui import forms

    ctx, url, server = ui.start_app(Path(tempfile.mkdtemp(prefix="bench-api-")), ("--api",))
    values = ui.form_values(size, steps)
    request = forms.request_from_values("txt2img", values)
    note = f"demo checkpoint, {size}x{size}, {steps} steps, Euler, {repeats} repeats"
    runs = {"core": lambda: ui.time_core(ctx, request), "http": lambda: time_http(url, size, steps),
            "handler": lambda: ui.time_handler(ctx, values)}
    rows: list[Row] = []
    try:
        for fn in runs.values():  # warm-up: scheduler build, first request, Gradio cache dir
            fn()
        browser_error = None
        if browser:
            try:
                pw, chromium, page, stamp = _open_page(url, size, steps)
                _, stamp = ui.time_browser(page, stamp)  # warm-up
                state = {"stamp": stamp}

                def click() -> float:
                    elapsed, state["stamp"] = ui.time_browser(page, state["stamp"])
                    return elapsed

                runs["browser"] = click
            except Exception as exc:  # noqa: BLE001 - the HTTP rows still count without a browser
                browser_error = exc
        try:
            times = alternate(runs, repeats)
        finally:
            if "browser" in runs:
                chromium.close()
                pw.stop()
        rows.append(ratio_row("txt2img via HTTP API / direct" + label, times["http"], times["core"], "ms", 1000, note))
        rows.append(ratio_row("txt2img via UI handler / direct" + label, times["handler"], times["core"], "ms", 1000,
                              note))
        if "browser" in times:
            rows.append(ratio_row("txt2img via browser click / direct" + label, times["browser"], times["core"], "ms",
                                  1000, note + "; click until the result is on the page"))
        elif browser_error is not None:
            rows.append(error_row("txt2img via browser click / direct" + label, browser_error))
    finally:
        server.should_exit = True
        ctx.close()
    return rows


def _open_page(url: str, size: int, steps: int):
    from playwright.sync_api import sync_playwright

    from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS

    pw = sync_playwright().start()
    chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(180_000)
    page.goto(url, wait_until="domcontentloaded", timeout=180_000)  # a loaded shared box is slow
    page.wait_for_selector("#txt2img_generate", timeout=180_000)
    ui.fill_form(page, size, steps)
    return pw, chromium, page, None


def measure(quick: bool) -> list[Row]:
    rows = measure_api(64, 3, 3 if quick else 10)
    if not quick:  # the UI-overhead figure: fixed costs matter less next to 20 real steps
        rows += measure_api(512, 20, 3, label=", 512x512 20 steps")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    print(format_table(measure_api(args.size, args.steps, args.repeats, not args.no_browser)))


if __name__ == "__main__":
    main()
