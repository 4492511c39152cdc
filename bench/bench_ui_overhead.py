"""UI overhead of one generation: the same request run directly (`run_generation`), through the UI's handler
path (forms.py -> job queue -> progress polling), and from a click in headless Chromium until the result
is on the page. One process serves the real app (uvicorn thread) on the demo checkpoint, so all three use
the same loaded model; runs are interleaved so machine load hits each alike; medians are compared.

    venv/bin/python bench/bench_ui_overhead.py [--size 512] [--steps 20] [--repeats 5]

`measure(size, steps, repeats, previews)` returns the medians and ratios for bench/run.py, and the CPU seconds
each path used (this process, all threads, and Chromium's processes): on a loaded box wall times swing by 2x
between runs, while the CPU a path spends besides the sampler's barely moves (Linux /proc; 0 elsewhere).
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for var, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("GRADIO_ANALYTICS_ENABLED", "False"),
                   ("DIFFUSERS_VERBOSITY", "error"), ("TRANSFORMERS_VERBOSITY", "error")):
    os.environ.setdefault(var, value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(data_dir: Path, extra_flags: tuple[str, ...] = ()):
    """Context + FastAPI app served by uvicorn in a thread; returns (ctx, url, server).

    extra_flags: more command-line flags (bench/bench_api.py passes --api)."""
    import uvicorn

    from modules.context import build_context, load_initial_model
    from modules.flags import parse_flags
    from webui.server import create_app

    port = free_port()
    flags = parse_flags(["--data-dir", str(data_dir), "--no-download-sd-model", "--port", str(port), *extra_flags])
    ctx = build_context(flags, ROOT)
    ctx.jobs.submit("load-model", lambda job_ctx: load_initial_model(ctx)).wait()
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return ctx, f"http://127.0.0.1:{port}", server


def form_values(size: int, steps: int) -> dict:
    return {"prompt": "a lighthouse at dusk", "negative_prompt": "", "sampler_name": "Euler", "scheduler": "Automatic",
            "steps": steps, "width": size, "height": size, "n_iter": 1, "batch_size": 1, "cfg_scale": 7.0,
            "seed": 1234, "styles": [], "script_name": "None"}


def chromium_cpu_seconds() -> float:
    """CPU seconds used so far by this process's child processes still alive (Playwright's driver, Chromium's
    browser, GPU and renderer processes); 0 where /proc is missing."""
    proc = Path("/proc")
    if not proc.is_dir():
        return 0.0
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0.0, list(children.get(os.getpid(), []))
    while stack:
        pid = stack.pop()
        stack += children.get(pid, [])
        try:
            fields = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        except (OSError, IndexError, ValueError):
            continue
    return total


def timed(fn) -> tuple[float, float, float]:
    """(wall seconds, this process's CPU seconds, Chromium's CPU seconds) of fn()."""
    wall, cpu, chromium = time.perf_counter(), time.process_time(), chromium_cpu_seconds()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu, chromium_cpu_seconds() - chromium


def time_core(ctx, request) -> float:
    from modules.generation.service import run_generation

    start = time.perf_counter()
    run_generation(ctx, request)
    return time.perf_counter() - start


def time_handler(ctx, values: dict) -> float:
    """The txt2img Generate handler's path without Gradio: forms -> submit -> poll -> final outputs."""
    from modules.generation.service import submit_generation
    from webui.ui import forms
    from webui.ui.components.runner import SessionJobs, stream_job

    jobs = SessionJobs(ctx)

    async def consume() -> float:
        start = time.perf_counter()
        async for _ in stream_job(ctx, jobs, "bench", lambda: forms.request_from_values("txt2img", values),
                                  lambda req: submit_generation(ctx, req)):
            pass
        return time.perf_counter() - start

    # The handler is an async generator; Playwright's sync API already runs a loop in this thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, consume()).result()


# Click Generate and resolve with the new result stamp once the result line changes. A MutationObserver on
# that line wakes only when it changes; Playwright's wait_for_function(polling=20) ran a query in the page
# 50 times a second, Chromium CPU that a user's page does not spend and that the sampler lost on 2 cores.
CLICK_AND_WAIT_JS = """(before) => new Promise((resolve, reject) => {
    const box = document.querySelector('#html_log_txt2img');
    const stamp = () => box.querySelector('.gen-log')?.dataset.stamp;
    const observer = new MutationObserver(() => {
        const now = stamp();
        if (now !== undefined && now !== before) { observer.disconnect(); resolve(now); }
    });
    observer.observe(box, {subtree: true, childList: true, attributes: true, characterData: true});
    setTimeout(() => { observer.disconnect(); reject(new Error('no result in 180 s')); }, 180000);
    document.querySelector('#txt2img_generate').click();
})"""


def time_browser(page, before: str | None) -> tuple[float, str | None]:
    """Seconds from the click until the result line shows a new stamp, and that stamp."""
    start = time.perf_counter()
    stamp = page.evaluate(CLICK_AND_WAIT_JS, before)
    return time.perf_counter() - start, stamp


def fill_form(page, size: int, steps: int) -> None:
    page.fill("#txt2img_prompt textarea", "a lighthouse at dusk")
    for elem, value in (("txt2img_width", size), ("txt2img_height", size), ("txt2img_steps", steps)):
        box = page.locator(f"#{elem} input[type=number]")
        box.fill(str(value))
        box.press("Enter")
    page.fill("#txt2img_seed input", "1234")
    page.click("#txt2img_sampling input")
    page.click("li[role=option][aria-label='Euler']")


def measure(size: int = 512, steps: int = 20, repeats: int = 5, previews: bool = True) -> dict[str, float]:
    """Median seconds of one generation: {"core", "handler", "browser"} plus the ratios "handler_ratio"
    (UI handler / core) and "browser_ratio" (browser / core), and median CPU seconds per run: "<path>_cpu"
    (this process: sampler, server, handler) and "<path>_chromium_cpu". Runs are interleaved; bench/run.py
    calls this."""
    from playwright.sync_api import sync_playwright

    from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS
    from webui.ui import forms

    data_dir = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    ctx, url, server = start_app(data_dir)
    if not previews:
        ctx.settings.update({"live_previews_enable": False}, save=False)
    values = form_values(size, steps)
    request = forms.request_from_values("txt2img", values)
    runs: dict[str, list[tuple[float, float, float]]] = {"core": [], "handler": [], "browser": []}
    try:
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = chromium.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector("#txt2img_generate")
            fill_form(page, size, steps)
            stamp = None
            # One warm-up of each (first-call costs: scheduler build, Gradio cache dir, browser JIT).
            time_core(ctx, request), time_handler(ctx, values)
            _, stamp = time_browser(page, stamp)
            def browser_run() -> None:
                nonlocal stamp
                _, stamp = time_browser(page, stamp)

            for _ in range(repeats):
                runs["core"].append(timed(lambda: time_core(ctx, request)))
                runs["handler"].append(timed(lambda: time_handler(ctx, values)))
                runs["browser"].append(timed(browser_run))
            chromium.close()
    finally:
        server.should_exit = True
        ctx.close()
    med: dict[str, float] = {}
    for name, samples in runs.items():
        med[name] = statistics.median(wall for wall, _, _ in samples)
        med[f"{name}_cpu"] = statistics.median(cpu for _, cpu, _ in samples)
        med[f"{name}_chromium_cpu"] = statistics.median(chromium for _, _, chromium in samples)
    med["handler_ratio"] = med["handler"] / med["core"]
    med["browser_ratio"] = med["browser"] / med["core"]
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="width = height in pixels")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-previews", action="store_true", help="turn live previews off (setting)")
    args = parser.parse_args()

    med = measure(args.size, args.steps, args.repeats, previews=not args.no_previews)
    print(f"one txt2img generation, {args.size}x{args.size}, {args.steps} steps, demo checkpoint, "
          f"median of {args.repeats}, load average {os.getloadavg()[0]:.1f}:")
    for name, label in (("core", "run_generation (direct)"), ("handler", "UI handler path"),
                        ("browser", "browser click -> result")):
        print(f"  {label:26s} {med[name] * 1000:8.1f} ms")
    print(f"  UI handler / core          {med['handler_ratio']:8.2f}x "
          f"(+{(med['handler'] - med['core']) * 1000:.1f} ms)")
    print(f"  browser / core             {med['browser_ratio']:8.2f}x "
          f"(+{(med['browser'] - med['core']) * 1000:.1f} ms)")
    print("CPU seconds per run (median; this process = sampler + server + handler, Chromium = its processes):")
    for name in ("core", "handler", "browser"):
        print(f"  {name:8s} this process {med[f'{name}_cpu']:7.2f} s   Chromium {med[f'{name}_chromium_cpu']:7.2f} s")


if __name__ == "__main__":
    main()
