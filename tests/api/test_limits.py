"""Resource limits on API input, each answered before any work is queued: request body size (413), prompt and
infotext length (422), the number of input images (422), and image pixels read from the header before
decoding (422; a too-large image in an Extras batch is reported and skipped). Measured before these limits:
one txt2img with a 60 MB negative prompt took the server to 24 GB RSS, and a 12000x12000 PNG of a few KB
was decoded. In-process, with the default limits."""
from __future__ import annotations

import base64
import json
import time

import pytest
from PIL import Image

from tests.api.inprocess import build_app, build_ctx, huge_png, local_client, png_b64

SMALL = {"width": 64, "height": 64, "steps": 1}


@pytest.fixture(scope="module")
def app_ctx(tmp_path_factory):
    ctx = build_ctx(tmp_path_factory.mktemp("limits"))
    app = build_app(ctx)
    with local_client(app) as client:
        yield client, ctx
    ctx.close()


def _job_count(ctx) -> int:
    return len(ctx.jobs.list())


def assert_refused(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text[:500]
    body = response.json()
    for word in words:
        assert word in body["detail"], body["detail"]
    assert len(response.content) < 4096  # the refused input is not echoed back


def test_body_over_the_limit_is_413_by_header_and_by_stream(app_ctx):
    client, ctx = app_ctx
    too_big = 64 * 2**20 + 1
    body = b'{"prompt": "' + b"a" * (too_big - 14) + b'"}'
    assert_refused(client.post("/sdapi/v1/txt2img", content=body, headers={"Content-Type": "application/json"}),
                   413, "64 MB")

    def chunks():  # no Content-Length: the limit counts what arrives
        yield b'{"prompt": "'
        for _ in range(65):
            yield b"a" * 2**20
        yield b'"}'

    assert_refused(client.post("/sdapi/v1/txt2img", content=chunks(), headers={"Content-Type": "application/json"}),
                   413, "64 MB")


@pytest.mark.parametrize("field", ["prompt", "negative_prompt", "hr_prompt", "hr_negative_prompt"])
def test_prompt_longer_than_the_setting_is_422_before_queueing(app_ctx, field):
    client, ctx = app_ctx
    before = _job_count(ctx)
    started = time.monotonic()
    answer = client.post("/sdapi/v1/txt2img", json={**SMALL, field: "a cat, " * 6000})  # 42000 characters
    assert_refused(answer, 422, field, "42000", "32768", "api_max_prompt_length")
    assert time.monotonic() - started < 2 and _job_count(ctx) == before


def test_other_text_fields_and_infotext_have_limits(app_ctx):
    client, ctx = app_ctx
    before = _job_count(ctx)
    infotext = "a cat\nNegative prompt: " + "x" * 120000 + "\nSteps: 2, Seed: 1"
    assert_refused(client.post("/sdapi/v1/txt2img", json={**SMALL, "infotext": infotext}), 422, "infotext",
                   "api_max_infotext_length")
    assert_refused(client.post("/sdapi/v1/txt2img", json={**SMALL, "sampler_name": "E" * 5000}), 422,
                   "sampler_name", "1024")
    assert_refused(client.post("/sdapi/v1/txt2img", json={**SMALL, "styles": ["s" * 2000]}), 422, "styles")
    assert_refused(client.post("/sdapi/v1/jobs/txt2img", json={**SMALL, "prompt": "p" * 40000}), 422, "prompt")
    assert _job_count(ctx) == before


def test_too_many_init_images_is_422_before_decoding(app_ctx):
    client, ctx = app_ctx
    tiny = png_b64(Image.new("RGB", (64, 64)))
    assert_refused(client.post("/sdapi/v1/img2img", json={**SMALL, "init_images": [tiny] * 17}), 422,
                   "init_images", "17", "16", "api_max_images")


def test_a_12000x12000_png_is_refused_from_its_header(app_ctx):
    client, ctx = app_ctx
    bomb = huge_png(12000, 12000)
    assert len(bomb) < 64 * 1024  # a few KB that decode to 144 megapixels
    encoded = base64.b64encode(bomb).decode()
    before = _job_count(ctx)
    for path, body, field in [("img2img", {**SMALL, "init_images": [encoded]}, "init_images[0]"),
                              ("extra-single-image", {"image": encoded, "upscaler_1": "None"}, "image"),
                              ("png-info", {"image": encoded}, "image"),
                              ("jobs/img2img", {**SMALL, "init_images": [encoded]}, "init_images[0]")]:
        started = time.monotonic()
        assert_refused(client.post(f"/sdapi/v1/{path}", json=body), 422, field, "12000x12000",
                       "api_max_image_pixels")
        assert time.monotonic() - started < 1.0, path  # from the header: nothing was decoded
    mask_body = {**SMALL, "init_images": [png_b64(Image.new("RGB", (64, 64)))], "mask": encoded}
    assert_refused(client.post("/sdapi/v1/img2img", json=mask_body), 422, "mask", "12000x12000")
    assert _job_count(ctx) == before


def test_a_bomb_in_an_extras_batch_is_reported_and_skipped(app_ctx):
    client, ctx = app_ctx
    good = png_b64(Image.new("RGB", (16, 12), (200, 10, 10)))
    bomb = base64.b64encode(huge_png(12000, 12000)).decode()
    answer = client.post("/sdapi/v1/extra-batch-images", json={
        "upscaler_1": "None", "upscaling_resize": 1,
        "imageList": [{"name": "good.png", "data": good}, {"name": "bomb.png", "data": bomb}]})
    assert answer.status_code == 200, answer.text[:500]
    out = answer.json()
    assert len(out["images"]) == 1
    assert "bomb.png" in out["html_info"] and "12000x12000" in out["html_info"]
    only_bombs = client.post("/sdapi/v1/extra-batch-images", json={
        "upscaler_1": "None", "imageList": [{"name": "bomb.png", "data": bomb}]})
    assert_refused(only_bombs, 422, "bomb.png", "12000x12000")


def test_limits_cannot_be_raised_or_url_fetching_enabled_through_post_options(app_ctx):
    client, ctx = app_ctx
    for key, value in [("api_enable_requests", True), ("api_max_prompt_length", 10**9),
                       ("api_max_body_mb", 100000), ("api_max_image_pixels", 10**12), ("api_queue_limit", 10**6)]:
        answer = client.post("/sdapi/v1/options", json={key: value})
        assert answer.status_code == 403, (key, answer.text)
        assert key in answer.json()["detail"] and "config.json" in answer.json()["detail"]
    options = client.get("/sdapi/v1/options").json()
    assert options["api_enable_requests"] is False and options["api_max_prompt_length"] == 32768
    # A client that posts back everything it read (unchanged values) is not refused.
    assert client.post("/sdapi/v1/options", json=options).status_code == 200
    assert json.loads(json.dumps(client.get("/sdapi/v1/options").json())) == options


def test_a_refused_value_is_not_echoed_back(app_ctx):
    client, ctx = app_ctx
    # A list where a string belongs: the validation error names the field without repeating the input.
    answer = client.post("/sdapi/v1/txt2img", json={**SMALL, "prompt": ["a" * 200000]})
    assert_refused(answer, 422, "prompt")
