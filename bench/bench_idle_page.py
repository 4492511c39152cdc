"""What the open page costs while nothing happens: Chromium's CPU seconds per second on the settled txt2img
page, with the frame pacing (webui/ui/frame_pacing.py) against the same page served without it
(`/?frame_pacing=off`). Both pages come from one server; pages alternate (ABBA), each measured over a fixed
window after it has settled. On two cores this CPU is taken from every generation the page waits for.

    venv/bin/python bench/bench_idle_page.py [--repeats 3] [--window 20]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import bench_ui_overhead as ui  # noqa: E402  (sets the offline environment first)
from bench._common import Row, alternate, format_table, ratio_row  # noqa: E402

SETTLE_SECONDS = 8.0  # the first seconds after load carry the tabs' own transitions


def idle_cpu(browser, url: str, window: float) -> float:
    """Chromium's CPU seconds per second on a fresh page of `url` once it has settled."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("#txt2img_generate", state="visible", timeout=120_000)
        time.sleep(SETTLE_SECONDS)
        before = ui.chromium_cpu_seconds()
        time.sleep(window)
        return (ui.chromium_cpu_seconds() - before) / window
    finally:
        page.close()


def measure_idle(repeats: int, window: float) -> list[Row]:
    from playwright.sync_api import sync_playwright

    from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS

    ctx, url, server = ui.start_app(Path(tempfile.mkdtemp(prefix="bench-idle-")))
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            runs = alternate({"paced": lambda: idle_cpu(browser, url + "/", window),
                              "unpaced": lambda: idle_cpu(browser, url + "/?frame_pacing=off", window)}, repeats)
            browser.close()
    finally:
        server.should_exit = True
        ctx.close()
    note = (f"settled txt2img page, {window:g} s windows, {repeats} each alternating; reference: the same page "
            "served with ?frame_pacing=off")
    return [ratio_row("idle page, Chromium CPU (frame pacing)", runs["paced"], runs["unpaced"], "s/s", note=note)]


def measure(quick: bool) -> list[Row]:
    """bench/run.py's rows."""
    return measure_idle(repeats=2 if quick else 3, window=8.0 if quick else 20.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured on each settled page")
    args = parser.parse_args()
    print(format_table(measure_idle(args.repeats, args.window)))


if __name__ == "__main__":
    main()
