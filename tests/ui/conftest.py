"""Browser-test helpers: a real server per test file (module scope) or the one shared by the session, one
Chromium per file, small images."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.browser import chromium_page
from tests.helpers.server import start_server

SMALL = {"width": 64, "height": 64, "steps": 3}
# The shared server's fixture files (see shared_data_dir): folder -> image name -> (size, colour).
TRAIN_IMAGES = {
    "set": {"red": ((64, 64), (255, 0, 0)), "blue": ((64, 64), (0, 0, 255)), "red2": ((64, 64), (255, 0, 0))},
    "raw": {"wide_red": ((96, 64), (255, 0, 0)), "tall_blue": ((64, 96), (0, 0, 255))},
}
SHARED_CONTROLNET = "control_demo_canny"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ui-data")


@pytest.fixture(scope="module")
def server(data_dir):
    """The real app (`launch.py`) on the demo checkpoint, shared by the tests of one file."""
    srv = start_server(["--data-dir", str(data_dir), "--no-download-sd-model"], data_dir)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory) -> Path:
    """The shared server's data dir, with what its modules need at start-up (dropdowns list these then):
    the tiny WD14 tagger and two image folders (Train tab), a tiny ControlNet for the demo model."""
    from modules.pipelines.demo import build_demo_pipeline
    from tests.fixtures.controlnets import write_controlnet_file
    from tests.fixtures.taggers import write_tiny_tagger

    data = tmp_path_factory.mktemp("ui-shared-data")
    write_tiny_tagger(data / "models" / "interrogators" / "tiny-wd14")
    for folder, images in TRAIN_IMAGES.items():
        (data / "datasets" / folder).mkdir(parents=True)
        for name, (size, colour) in images.items():
            Image.new("RGB", size, colour).save(data / "datasets" / folder / f"{name}.png")
    pipe = build_demo_pipeline()
    write_controlnet_file(pipe.unet, data / "models" / "ControlNet", SHARED_CONTROLNET, family="sd1",
                          vae_scale_factor=pipe.vae_scale_factor)
    return data


@pytest.fixture(scope="session")
def shared_server(shared_data_dir):
    """One real app (`launch.py`, demo checkpoint, built-in extensions) for the modules that only generate,
    caption and click: a server start costs 10-40 s on the shared 2-core box. A module that changes
    settings, extensions or the loaded model keeps its own `server`."""
    srv = start_server(["--data-dir", str(shared_data_dir), "--no-download-sd-model"], shared_data_dir)
    yield srv
    srv.stop()


def on_the_shared_server():
    """The module fixtures `data_dir` and `server` pointed at the session's shared server; a module that
    changes no settings, extension or loaded model takes them with `data_dir, server = on_the_shared_server()`."""
    @pytest.fixture(scope="module", name="data_dir")
    def shared_data_dir_for_module(shared_data_dir):
        return shared_data_dir

    @pytest.fixture(scope="module", name="server")
    def shared_server_for_module(shared_server):
        return shared_server

    return shared_data_dir_for_module, shared_server_for_module


@pytest.fixture(scope="module")
def browser_page(server):
    """Chromium opened after the module's server and closed before it: the server then stops without
    waiting for the page's open event stream."""
    with chromium_page() as page:
        yield page


@pytest.fixture
def page(browser_page, server):
    """The shared page, freshly loaded (every test starts from the page as a user first sees it)."""
    open_page(browser_page, server.url)
    return browser_page


def open_page(page, url: str) -> float:
    """Load the UI; returns seconds until Generate is visible and the page-load refresh has run."""
    started = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("#txt2img_generate", state="visible", timeout=30_000)
    elapsed = time.perf_counter() - started
    # The page-load script then selects every tab once (page_js.py); a test that clicks or draws while it
    # runs can lose its input (seen: an inpaint stroke lost on a busy machine), so wait until it is done.
    page.wait_for_function("() => document.documentElement.dataset.webuiTabsRendered", timeout=30_000)
    return elapsed


def set_number(page, elem_id: str, value) -> None:
    """Type into a slider's or number box's number input, as a user does."""
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")


def set_text(page, elem_id: str, value: str) -> None:
    page.fill(f"#{elem_id} textarea, #{elem_id} input[type=text]", value)


def choose(page, elem_id: str, option: str) -> None:
    """Pick `option` in a dropdown by clicking it in the opened list, as a user does."""
    page.click(f"#{elem_id} input")
    page.click(f"li[role=option][aria-label='{option}']")


def number_value(page, elem_id: str) -> float:
    return float(page.input_value(f"#{elem_id} input[type=number]"))


def text_value(page, elem_id: str) -> str:
    return page.input_value(f"#{elem_id} textarea, #{elem_id} input")


def open_tab(page, tab_id: str) -> None:
    page.click(f"#tab_{tab_id}-button")
    page.wait_for_selector(f"#tab_{tab_id}", state="visible")


def open_subtab(page, elem_id: str) -> None:
    page.click(f"#{elem_id}-button")
    page.wait_for_selector(f"#{elem_id}", state="visible")


def small_form(page, tab: str, prompt: str, seed: int = 1234) -> None:
    """A 64x64, 3-step request: the demo model answers it in well under a second."""
    set_text(page, f"{tab}_prompt", prompt)
    for field, value in SMALL.items():
        set_number(page, f"{tab}_{field}", value)
    page.fill(f"#{tab}_seed input", str(seed))


def log_stamp(page, tab: str) -> str | None:
    """The stamp of the message line under the gallery (new on every message), or None before any."""
    return page.evaluate("(tab) => document.querySelector('#html_log_' + tab + ' .gen-log')?.dataset.stamp"
                         " || null", tab)


def run_and_wait(page, tab: str, click: str | None = None, timeout: float = 60_000) -> str:
    """Click Generate (or `click`) and wait for this run's message line; returns its text."""
    before = log_stamp(page, tab)
    page.click(click or f"#{tab}_generate")
    return wait_message(page, tab, before, timeout)


def wait_message(page, tab: str, before: str | None, timeout: float = 60_000) -> str:
    page.wait_for_function(
        """([tab, before]) => {
            const el = document.querySelector('#html_log_' + tab + ' .gen-log');
            return el && el.dataset.stamp !== before;
        }""", arg=[tab, before], timeout=timeout)
    return page.inner_text(f"#html_log_{tab}")


def newest_png(folder: Path) -> Path:
    files = sorted(folder.rglob("*.png"), key=lambda p: p.stat().st_mtime)
    assert files, f"no PNG under {folder}"
    return files[-1]


def gradient_image(size: int = 64) -> Image.Image:
    """A smooth picture whose every pixel differs from its neighbours: changes are easy to see."""
    img = Image.new("RGB", (size, size))
    img.putdata([(x * 255 // size, y * 255 // size, 128) for y in range(size) for x in range(size)])
    return img
