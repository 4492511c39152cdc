"""Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
from __future__ import annotations

import shutil
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


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under tests/artifacts/ (kept for people to look at)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
