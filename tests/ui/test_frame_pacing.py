"""The idle page asks for no frames (webui/ui/frame_pacing.py): Gradio's never-stopped status-tracker timer
ticks 10 times a second instead of 60 and the hidden image editors' PixiJS ticker 4 instead of 60, both from
a timer that asks for no frame, and an editor on screen still gets every frame. Each frame request is
counted below the pacing (an init script runs before every page script), sorted by the pacing's matcher."""
from __future__ import annotations

import time

import pytest

from tests.helpers.browser import chromium_page
from tests.ui.conftest import on_the_shared_server, open_page, open_subtab, open_tab

pytestmark = [pytest.mark.browser, pytest.mark.server]

data_dir, server = on_the_shared_server()

COUNT_FRAMES_JS = """
(() => {
  window.__frames = {tracker: 0, pixi: 0, other: 0};
  const raw = window.requestAnimationFrame;
  window.requestAnimationFrame = function (cb) {
    const kind = (window.__framePacing && window.__framePacing.kindOf(cb)) || "other";
    window.__frames[kind] += 1;
    return raw.call(window, cb);
  };
})();
"""


@pytest.fixture(scope="module")
def counted_page(server):
    with chromium_page() as page:
        page.add_init_script(COUNT_FRAMES_JS)
        open_page(page, server.url)
        yield page


def frames_per_second(page, seconds: float = 3.0) -> dict[str, float]:
    """Frame requests that reached the browser per second, by loop, and "tracker_ran": the tracker timer's
    callbacks run by the pacing (from a timer, without a frame)."""
    read = "({...window.__frames, tracker_ran: window.__framePacing ? window.__framePacing.ran.tracker : 0})"
    before = page.evaluate(read)
    time.sleep(seconds)
    after = page.evaluate(read)
    return {kind: (after[kind] - before[kind]) / seconds for kind in before}


def test_the_page_carries_the_pacing_before_gradio_scripts(server):
    import urllib.request

    with urllib.request.urlopen(server.url + "/", timeout=60) as resp:
        html = resp.read().decode()
    pacing = html.index('data-source="frame-pacing"')
    assert pacing < html.index('type="module"'), "the pacing must run before Gradio's module grabs the frame API"


def test_an_idle_page_asks_for_few_frames_and_the_timer_still_ticks(counted_page):
    open_tab(counted_page, "txt2img")
    # The first seconds after load carry the tabs' own transitions; an idle page is one that has settled.
    for _ in range(10):
        rates = frames_per_second(counted_page, 2.0)
        if rates["tracker"] + rates["pixi"] + rates["other"] <= 10:
            break
    # Unpaced, both loops asked for 60 frames a second each (120 in all); paced, they ask for none.
    assert 4 <= rates["tracker_ran"] <= 12, rates  # the loading screen's timer: matched, and still running
    assert rates["tracker"] + rates["pixi"] + rates["other"] <= 10, rates


def test_an_image_editor_on_screen_gets_every_frame(counted_page):
    open_tab(counted_page, "img2img")
    open_subtab(counted_page, "img2img_inpaint_tab")
    counted_page.wait_for_selector("#img2maskimg canvas", state="visible")
    counted_page.wait_for_timeout(500)  # the paced tick comes back to every frame within a quarter second
    rates = frames_per_second(counted_page)
    assert rates["pixi"] >= 20, rates
