"""`/sdapi/v1/png-info` on an image with no `parameters` chunk, or an empty one, answers A1111's parse of ""
in `parameters` (Prompt "", Clip skip 1, Hires sampler "Use same sampler", ...), not an empty dict; JPEG and WebP
files (ours and A1111's) answer the infotext in their EXIF UserComment."""
from __future__ import annotations

import base64

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.api.inprocess import build_app, build_ctx, local_client, png_b64
from tests.api.test_png_info_exif import FILES
from tests.api.test_png_info_exif import TEXT as EXIF_TEXT
from tests.unit.images.test_infotext_defaults import EMPTY


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    ctx = build_ctx(tmp_path_factory.mktemp("png-info"))
    with local_client(build_app(ctx)) as test_client:
        yield test_client
    ctx.close()


def png_with(chunks: dict[str, str]) -> str:
    import base64
    import io

    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, format="PNG", pnginfo=info)
    return base64.b64encode(buf.getvalue()).decode()


@pytest.mark.parametrize("image", [png_b64(Image.new("RGB", (8, 8))), png_with({"parameters": ""}),
                                   png_with({"Software": "paint"})],
                         ids=["no chunk", "empty parameters", "other chunks only"])
def test_no_or_empty_parameters_give_a1111_defaults(client, image):
    answer = client.post("/sdapi/v1/png-info", json={"image": image})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["info"] == "" and body["parameters"] == EMPTY


def test_parameters_are_parsed_as_before(client):
    image = png_with({"parameters": "a cat\nSteps: 5, Seed: 1, Size: 64x32"})
    params = client.post("/sdapi/v1/png-info", json={"image": image}).json()["parameters"]
    assert [params[k] for k in ("Prompt", "Steps", "Size-1", "Size-2")] == ["a cat", "5", "64", "32"]


@pytest.mark.parametrize("kind", FILES)
def test_jpeg_and_webp_exif_infotext_is_read(client, tmp_path, kind):
    """Ours and A1111's JPEG/WebP (EXIF UserComment): the text and its parse, A1111's defaults included."""
    data = FILES[kind](tmp_path)
    answer = client.post("/sdapi/v1/png-info", json={"image": base64.b64encode(data).decode()})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    params = body["parameters"]
    assert body["info"] == EXIF_TEXT and params["Hires sampler"] == "Use same sampler"
    assert (params["Prompt"], params["Negative prompt"], params["Seed"], params["Clip skip"]) == (
        "a cat, café ☕ 猫", "dog", "42", "2")
