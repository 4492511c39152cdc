"""Keep the page from drawing 60 frames a second when nothing on it changes.

Two loops in Gradio's front end ask the browser for a frame on every frame, forever, and each frame costs
Chromium style, layout and paint work that on two cores is taken from the sampler (docs/performance.md,
"What the browser still costs"):

- the status tracker's elapsed-time timer. The loading screen's tracker is destroyed while still "pending",
  so its timer never stops; a running event's tracker counts at 60 fps although it shows tenths of a
  second. Paced to 10 a second, the shown time is the same.
- PixiJS's ticker behind the img2img image editors, which runs with no editor on screen (the tabs are
  rendered at load, page_js.py). While no canvas is visible it is paced to 4 ticks a second; it is back to
  every frame within a quarter of a second of an editor showing.

Both loops grab `requestAnimationFrame` when their module loads, so the pacing has to be in place before
Gradio's module script runs: `PageHeadScript` puts it first in the page's <head> (an inline classic script
runs before the deferred module). A callback is told apart by its source; a Gradio build whose sources
differ is left alone (every frame as before), never broken. `/?frame_pacing=off` serves the page without it
(bench/bench_idle_page.py compares the two; a user can rule it out when a page misbehaves).
"""
from __future__ import annotations

FRAME_PACING_JS = r"""
(() => {
  const raw = window.requestAnimationFrame.bind(window);
  const TRACKER_TIMER = /performance\.now\(\)-[\w$]+\([\w$]+\)\)\/1e3\),[\w$]+&&[\w$]+\(\)/;
  const PIXI_TICK = /this\._requestId=null,this\.started&&/;
  const TRACKER_MS = 100, HIDDEN_PIXI_MS = 250;
  const kinds = new WeakMap();  // Pixi's tick is one function; the tracker's is a new closure each frame
  const kindOf = (cb) => {
    let kind = kinds.get(cb);
    if (kind === undefined) {
      const src = Function.prototype.toString.call(cb);
      kind = TRACKER_TIMER.test(src) ? "tracker" : PIXI_TICK.test(src) ? "pixi" : "";
      kinds.set(cb, kind);
    }
    return kind;
  };
  const canvases = document.getElementsByTagName("canvas");
  const canvasShown = () => {
    for (const c of canvases) if (c.offsetParent !== null) return true;
    return false;
  };
  // A paced callback runs from a timer, with the time a frame would have given it, and asks for no frame:
  // a frame requested from outside the frame loop cost Chromium ~1 ms each. Whatever the callback changes
  // on screen still gets drawn, in the frame that change schedules.
  const ran = {tracker: 0, pixi: 0};
  const later = (cb, kind, ms) => {
    const id = setTimeout(() => { ran[kind] += 1; cb(performance.now()); }, ms);
    return -id;  // cancelAnimationFrame below knows a negative id is a timeout
  };
  window.requestAnimationFrame = function requestAnimationFrame(cb) {
    if (typeof cb === "function") {
      const kind = kindOf(cb);
      if (kind === "tracker") return later(cb, kind, TRACKER_MS);
      if (kind === "pixi" && !canvasShown()) return later(cb, kind, HIDDEN_PIXI_MS);
    }
    return raw(cb);
  };
  const rawCancel = window.cancelAnimationFrame.bind(window);
  window.cancelAnimationFrame = function cancelAnimationFrame(id) {
    return id < 0 ? clearTimeout(-id) : rawCancel(id);
  };
  window.__framePacing = {kindOf, ran};  // for tests: what this Gradio build's sources matched, and ran
})();
"""

HEAD_TAG = b"<head>"
OFF_QUERY = b"frame_pacing=off"


def head_script_tag() -> bytes:
    return b'<script data-source="frame-pacing">' + FRAME_PACING_JS.encode() + b"</script>"


class PageHeadScript:
    """ASGI middleware: the UI page's HTML (GET /) gets `script` right after <head>.

    Gradio inserts the page's `head=` content itself, from its module script: too late for code that must
    run before that module. Only an uncompressed text/html answer at the page's path is touched."""

    def __init__(self, app, script: bytes):
        self.app = app
        self.script = script

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "GET" or scope.get("path") != "/" \
                or OFF_QUERY in scope.get("query_string", b"").split(b"&"):
            return await self.app(scope, receive, send)
        start: dict | None = None
        chunks: list[bytes] = []

        async def patched_send(message):
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                is_html = headers.get(b"content-type", b"").startswith(b"text/html")
                if not is_html or b"content-encoding" in headers:
                    return await send(message)
                start = message
                return None
            if start is None or message["type"] != "http.response.body":
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return None
            body = b"".join(chunks).replace(HEAD_TAG, HEAD_TAG + self.script, 1)
            headers = [(k, v) for k, v in start.get("headers") or [] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, patched_send)
