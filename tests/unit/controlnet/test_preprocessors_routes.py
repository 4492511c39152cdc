"""GET /controlnet/module_list and POST /controlnet/detect (extensions/controlnet/preprocessors/routes.py),
registered through a real ExtensionApi and served by FastAPI, with sd-webui-controlnet's field names."""
from __future__ import annotations

import base64
import importlib
import io

import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from modules.extensions.api import ExtensionApi
from modules.extensions.loader import import_extension_package, package_name
from modules.flags import Flags
from modules.paths import BUILTIN_EXTENSIONS_DIR, Paths
from modules.settings import Settings

import_extension_package("controlnet", BUILTIN_EXTENSIONS_DIR / "controlnet")
routes = importlib.import_module(f"{package_name('controlnet')}.preprocessors.routes")
pp = importlib.import_module(f"{package_name('controlnet')}.preprocessors")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    data = tmp_path_factory.mktemp("cn-data")
    api = ExtensionApi("controlnet", BUILTIN_EXTENSIONS_DIR / "controlnet", settings=Settings(data / "config.json"),
                       paths=Paths.from_dirs(data), flags=Flags())
    routes.add_routes(api)
    app = FastAPI()
    for route in api.contributions.routes:
        app.add_api_route(route.path, route.endpoint, methods=list(route.methods))
    return TestClient(app), data


def b64png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def picture() -> Image.Image:
    img = Image.new("RGB", (128, 64), "white")
    ImageDraw.Draw(img).rectangle([30, 10, 90, 50], fill="black")
    return img


def test_module_list_names_and_aliases(setup):
    client, _ = setup
    plain = client.get("/controlnet/module_list").json()
    assert plain["module_list"][0] == "none"
    assert {"canny", "depth", "openpose_full", "color", "lineart_standard"} <= set(plain["module_list"])
    assert plain["module_detail"]["canny"]["sliders"][1]["name"] == "Low Threshold"
    aliased = client.get("/controlnet/module_list", params={"alias_names": "true"}).json()
    assert {"depth_midas", "t2ia_color_grid", "lineart_standard (from white bg & black line)"} <= \
        set(aliased["module_list"])
    assert set(aliased["module_detail"]) == set(aliased["module_list"])


def test_detect_returns_the_canny_map(setup):
    client, _ = setup
    response = client.post("/controlnet/detect", json={
        "controlnet_module": "canny", "controlnet_input_images": [b64png(picture())],
        "controlnet_processor_res": 64, "controlnet_threshold_a": 100, "controlnet_threshold_b": 200})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["info"] == "Success" and len(body["images"]) == 1
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["images"][0]))).convert("RGB"))
    assert np.array_equal(out[:, :, 0], cv2.Canny(np.asarray(picture()), 100, 200))


def test_detect_refuses_bad_input_with_422(setup):
    client, data = setup
    cases = [
        ({"controlnet_module": "canny", "controlnet_input_images": []}, "no image given"),
        ({"controlnet_module": "nope", "controlnet_input_images": [b64png(picture())]},
         "unknown ControlNet preprocessor 'nope'"),
        ({"controlnet_module": "canny", "controlnet_input_images": ["not base64 at all!"]},
         "controlnet_input_images[0]"),
        ({"controlnet_module": "depth_midas", "controlnet_input_images": [b64png(picture())]},
         str(data / "models" / "ControlNet" / "annotators" / "dpt_hybrid-midas-501f0c75.pt")),
    ]
    for body, expected in cases:
        response = client.post("/controlnet/detect", json=body)
        assert response.status_code == 422, (body, response.text)
        assert expected in response.json()["detail"], response.text


def test_register_all_offers_every_module_as_a_provider(tmp_path):
    api = ExtensionApi("controlnet", BUILTIN_EXTENSIONS_DIR / "controlnet", settings=Settings(tmp_path / "c.json"),
                       paths=Paths.from_dirs(tmp_path), flags=Flags())
    pp.register_all(api)
    providers = {p.name: p for p in api.contributions.providers if p.kind == "preprocessor"}
    assert set(providers) == set(pp.module_names())
    assert providers["depth"].aliases == ("depth_midas",)
    assert [s.key for s in api.contributions.settings] == [pp.ALLOW_DOWNLOAD_SETTING]
    canny = providers["canny"].provider
    out = np.asarray(canny(picture(), 64, 100, 200))
    assert np.array_equal(out[:, :, 0], cv2.Canny(np.asarray(picture()), 100, 200))
    assert providers["depth"].provider.missing_files() == [
        tmp_path / "models" / "ControlNet" / "annotators" / "dpt_hybrid-midas-501f0c75.pt"]


def test_webuiapi_client_detect_and_module_list(setup):
    """The webuiapi client from PyPI, unchanged, over the same app (its session is the test client): it sends
    the older `controlnet_images` field with data: URIs."""
    webuiapi = pytest.importorskip("webuiapi")
    client, _ = setup
    api = webuiapi.WebUIApi(baseurl="http://testserver/sdapi/v1")
    api.session = client
    assert "canny" in api.controlnet_module_list()
    result = api.controlnet_detect([picture()], module="canny", processor_res=64, threshold_a=100, threshold_b=200)
    out = np.asarray(result.images[0].convert("RGB"))
    assert np.array_equal(out[:, :, 0], cv2.Canny(np.asarray(picture()), 100, 200))
