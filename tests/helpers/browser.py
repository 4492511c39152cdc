"""Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
from __future__ import annotations

import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path

from tests.helpers.needs import missing

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# Without the background-networking flags Chromium keeps dialling Google on this closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium_page(viewport=(1400, 1000)):
    """Yield a Playwright page in headless Chromium; without Chromium: skip, or fail under tests/run.sh."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        missing("Debian chromium is not installed (tests/run.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            yield page
        finally:
            browser.close()


def screenshot(page, name: str) -> Path | None:
    """Save a full-page screenshot under tests/artifacts/ (kept for people to look at).

    Screenshots are pictures for people, not assertions: while a generation holds both CPU cores,
    Chromium can take longer than any sane timeout to paint a 1000-component page, and that must
    not fail the behaviour the test checks. So a slow full page falls back to the viewport, and a
    viewport that is still too slow is reported and skipped.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    for full_page, timeout_ms in ((True, 15_000), (False, 15_000)):
        try:
            page.screenshot(path=str(path), full_page=full_page, timeout=timeout_ms)
            return path
        except PlaywrightTimeout:
            continue
    warnings.warn(f"screenshot {name!r} not taken: the page did not paint within 30 s", stacklevel=2)
    return None
