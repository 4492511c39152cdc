"""Bad input and auth against a real server started with --api-auth: every case gets its status and a
message in A1111's error shape {error, detail, body, errors}, and the server keeps serving."""
from __future__ import annotations

import base64
import json

import pytest
import requests

from tests.api.conftest import AUTH, SMALL, decode, launch, png_b64

pytestmark = pytest.mark.server
ERROR_KEYS = {"error", "detail", "body", "errors"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_sd15_checkpoint):
    root = tmp_path_factory.mktemp("api-auth-server")
    proc = launch(root, tiny_sd15_checkpoint, "--api-auth", f"{AUTH[0]}:{AUTH[1]},other:pw", auth=AUTH)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def http(server):
    session = requests.Session()
    session.auth = AUTH
    return session


def post(http, server, path: str, body) -> requests.Response:
    return http.post(server.url + "/sdapi/v1/" + path, json=body, timeout=120)


def assert_error(response: requests.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS
    for word in words:
        assert word in body["detail"], body
    return body


@pytest.mark.parametrize("path", ["/sdapi/v1/sd-models", "/sdapi/v1/options", "/sdapi/v1/progress",
                                  "/sdapi/v1/jobs", "/docs", "/openapi.json"])
def test_every_route_needs_auth(server, path):
    assert_error(requests.get(server.url + path, timeout=10), 401)
    response = requests.get(server.url + path, auth=(AUTH[0], "wrong"), timeout=10)
    assert_error(response, 401, "Incorrect username or password")
    assert response.headers["WWW-Authenticate"] == "Basic"
    assert requests.get(server.url + path, auth=AUTH, timeout=10).status_code == 200
    assert requests.get(server.url + path, auth=("other", "pw"), timeout=10).status_code == 200


def test_posts_need_auth_and_webuiapi_logs_in(server):
    import webuiapi

    assert_error(requests.post(server.url + "/sdapi/v1/txt2img", json=SMALL, timeout=10), 401)
    assert_error(requests.post(server.url + "/sdapi/v1/jobs/txt2img", json=SMALL, timeout=10), 401)
    api = webuiapi.WebUIApi(port=server.port, username=AUTH[0], password=AUTH[1], sampler="Euler", steps=2)
    assert api.txt2img(prompt="authorised", width=64, height=64).image.size == (64, 64)


def test_bad_input_each_gets_a_status_and_a_message(http, server):
    init = png_b64(decode(post(http, server, "txt2img", {"seed": 1, **SMALL}).json()["images"][0]))
    cases = [
        ("img2img", {"init_images": ["this is not base64!"], **SMALL}, 422, "init_images[0]", "base64"),
        ("img2img", {"init_images": [base64.b64encode(b"not an image").decode()], **SMALL}, 422,
         "init_images[0]", "not a readable image"),
        ("img2img", {"init_images": [init], "mask": "data:image/png;base64,@@@", **SMALL}, 422, "mask"),
        ("img2img", {"prompt": "no init image", **SMALL}, 404, "Init image not found"),
        ("img2img", {"init_images": ["http://127.0.0.1:1/x.png"], **SMALL}, 422, "URLs are disabled"),
        ("txt2img", {**SMALL, "width": 0}, 422, "width", "64..4096"),
        ("txt2img", {**SMALL, "steps": 10000}, 422, "steps", "10000"),
        ("txt2img", {**SMALL, "steps": "many"}, 422, "steps"),
        ("txt2img", {**SMALL, "script_name": "No such script"}, 422, "script_name", "not found"),
        ("txt2img", {**SMALL, "alwayson_scripts": {"nothing here": {"args": []}}}, 422, "always on script"),
        ("txt2img", {**SMALL, "override_settings": {"sd_model_checkpoint": "no-such-model"}}, 422,
         "no-such-model"),
        ("options", {"definitely_not_an_option": 1}, 422, "unknown option", "definitely_not_an_option"),
        ("options", {"CLIP_stop_at_last_layers": "two"}, 422, "CLIP_stop_at_last_layers"),
        ("options", {"sd_model_checkpoint": "no-such-model"}, 422, "no checkpoint matches"),
        ("extra-single-image", {"image": init, "upscaler_1": "Magic 8x"}, 422, "upscaler_1", "Magic 8x"),
        ("extra-single-image", {"image": init, "upscaler_1": "Lanczos", "upscaling_resize": 500}, 422,
         "upscaling_resize"),
        ("extra-single-image", {"image": "%%%"}, 422, "image"),
        ("png-info", {"image": "%%%"}, 422, "image"),
    ]
    for path, body, status, *words in cases:
        assert_error(post(http, server, path, body), status, *words)
    malformed = http.post(server.url + "/sdapi/v1/txt2img", data=b"{not json", timeout=10,
                          headers={"Content-Type": "application/json"})
    assert_error(malformed, 422)
    # Nothing was changed by the refused options, and the server still generates.
    options = http.get(server.url + "/sdapi/v1/options", timeout=10).json()
    assert options["CLIP_stop_at_last_layers"] == 1 and "definitely_not_an_option" not in options
    assert post(http, server, "txt2img", {"prompt": "still here", **SMALL}).status_code == 200


def test_unknown_sampler_falls_back_and_says_so(http, server):
    out = post(http, server, "txt2img", {"sampler_name": "Imaginary Sampler", **SMALL})
    assert out.status_code == 200
    info = json.loads(out.json()["info"])
    assert info["sampler_name"] == "Euler"
    assert any("Imaginary Sampler" in warning for warning in info["warnings"])


def test_a_seed_past_64_bits_makes_an_image_with_that_seed(http, server):
    # torch's generator refused seeds of 2**64 and up: the job failed with a 500. Now the noise is that of the
    # seed's low 64 bits, and the infotext keeps the seed as given, so pasting it back gives the same image.
    seed = 2**70 + 3
    out = post(http, server, "txt2img", {"prompt": "big seed", "seed": seed, "batch_size": 2, **SMALL})
    assert out.status_code == 200, out.text
    info = json.loads(out.json()["info"])
    assert info["all_seeds"] == [seed, seed + 1] and f"Seed: {seed}," in info["infotexts"][0]
    low = post(http, server, "txt2img", {"prompt": "big seed", "seed": seed % 2**64, **SMALL})
    assert decode(out.json()["images"][0]).tobytes() == decode(low.json()["images"][0]).tobytes()
