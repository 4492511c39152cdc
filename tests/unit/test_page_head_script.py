"""PageHeadScript (webui/ui/frame_pacing.py) puts its script first in the page's <head> and nowhere else:
not into other paths, other methods, other content types or compressed bodies; the length header follows."""
from __future__ import annotations

import gzip

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.testclient import TestClient

from webui.ui.frame_pacing import FRAME_PACING_JS, PageHeadScript, head_script_tag

PAGE = "<!doctype html><html><head><title>t</title><script type=\"module\" src=\"x.js\"></script></head></html>"
SCRIPT = b"<script>first()</script>"


def client() -> TestClient:
    app = FastAPI()
    app.add_api_route("/", lambda: HTMLResponse(PAGE), methods=["GET", "POST"])
    app.add_api_route("/other", lambda: HTMLResponse(PAGE))
    app.add_api_route("/json", lambda: JSONResponse({"html": "<head>"}))
    app.add_api_route("/gz", lambda: Response(gzip.compress(b"<head>"), media_type="text/html",
                                              headers={"content-encoding": "gzip"}))
    app.add_middleware(PageHeadScript, script=SCRIPT)
    return TestClient(app)


def test_the_page_gets_the_script_first_in_head_with_a_matching_length():
    resp = client().get("/")
    assert resp.text.startswith("<!doctype html><html><head><script>first()</script><title>")
    assert resp.text.count("first()") == 1
    assert int(resp.headers["content-length"]) == len(resp.content) == len(PAGE) + len(SCRIPT)


def test_other_answers_pass_unchanged():
    c = client()
    assert c.post("/").text == PAGE
    assert c.get("/?frame_pacing=off").text == PAGE
    assert "first()" in c.get("/?__theme=dark&x=1").text
    assert c.get("/other").text == PAGE
    assert c.get("/json").json() == {"html": "<head>"}
    assert c.get("/gz").text == "<head>"  # decoded by the client: the compressed body was left alone


def test_the_shipped_script_is_one_inline_tag():
    tag = head_script_tag().decode()
    assert tag.startswith('<script data-source="frame-pacing">') and tag.endswith("</script>")
    assert "</script" not in FRAME_PACING_JS  # would end the inline tag early
