"""ControlNet over HTTP as sd-webui-controlnet clients use it: the unchanged `webuiapi` client's
ControlNetUnit (canny) drives txt2img and img2img through alwayson_scripts; /controlnet/version,
/controlnet/model_list (?update=true) and /controlnet/settings answer in its shapes; bad units are 422s
with the message. One in-process server (real uvicorn) for the module."""
from __future__ import annotations

import numpy as np
import pytest
import requests
import webuiapi
from PIL import Image, ImageDraw

from modules.context import build_context, load_initial_model
from modules.flags import parse_flags
from tests.api.inprocess import ThreadedServer, build_app, png_b64
from tests.fixtures.controlnets import write_controlnet_file
from tests.integration.conftest import ROOT

SMALL = dict(width=64, height=64, steps=2, seed=11, cfg_scale=5)


def drawing() -> Image.Image:
    image = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([12, 12, 40, 52], fill="black")
    draw.ellipse([30, 8, 60, 36], outline=(200, 20, 20), width=3)
    return image


@pytest.fixture(scope="module")
def cn_server(tmp_path_factory, tiny_sd15_checkpoint, tiny_sd15_pipe, tiny_sdxl_pipe):
    root = tmp_path_factory.mktemp("controlnet-api")
    models = root / "ControlNet"
    write_controlnet_file(tiny_sd15_pipe.unet, models, "control_tiny_canny", family="sd1", seed=1)
    write_controlnet_file(tiny_sdxl_pipe.unet, models, "control_tiny_xl", family="sdxl", seed=2)
    flags = parse_flags(["--data-dir", str(root / "data"),
                         "--ckpt-dir", str(tiny_sd15_checkpoint.path.parent),
                         "--ckpt", str(tiny_sd15_checkpoint.path), "--no-download-sd-model", "--nowebui",
                         "--controlnet-dir", str(models)], environ={}, project_root=ROOT)
    ctx = build_context(flags, ROOT)
    load_initial_model(ctx)
    assert ctx.model_error is None
    with ThreadedServer(build_app(ctx)) as server:
        server.models = models
        yield server
    ctx.close()


@pytest.fixture(scope="module")
def client(cn_server):
    host, port = cn_server.url.removeprefix("http://").split(":")
    return webuiapi.WebUIApi(host=host, port=int(port))


def test_version_model_list_and_settings(cn_server, client, tiny_sd15_pipe):
    assert requests.get(cn_server.url + "/controlnet/version", timeout=10).json() == {"version": 2}
    models = webuiapi.ControlNetInterface(client).model_list()
    assert [m.split(" [")[0] for m in models] == ["control_tiny_canny", "control_tiny_xl"]
    assert all(m.endswith("]") for m in models)
    write_controlnet_file(tiny_sd15_pipe.unet, cn_server.models, "control_added_later", family="sd1")
    listed = requests.get(cn_server.url + "/controlnet/model_list", params={"update": "true"},
                          timeout=10).json()
    assert any(m.startswith("control_added_later [") for m in listed["model_list"])
    settings = requests.get(cn_server.url + "/controlnet/settings", timeout=10).json()
    assert settings["control_net_unit_count"] == 3


def test_webuiapi_controlnet_unit_drives_txt2img_and_img2img(client):
    base = client.txt2img(prompt="a house", **SMALL).image
    unit = webuiapi.ControlNetUnit(image=drawing(), module="canny", model="control_tiny_canny", weight=1.0,
                                   threshold_a=100, threshold_b=200, pixel_perfect=True)
    # webuiapi writes the units into its mutable default `alwayson_scripts={}`, so every later call in this
    # process (other test modules' clients too) would carry them: give each call its own dict.
    result = client.txt2img(prompt="a house", controlnet_units=[unit], alwayson_scripts={}, **SMALL)
    assert result.image.size == (64, 64)
    assert np.abs(np.asarray(result.image).astype(int) - np.asarray(base).astype(int)).max() > 10
    info = result.info["infotexts"][0]
    assert 'ControlNet 0: "Module: canny, Model: control_tiny_canny [' in info
    assert "Pixel Perfect: True, Control Mode: Balanced" in info
    # img2img: a unit without an image uses the init image.
    no_image = webuiapi.ControlNetUnit(model="control_tiny_canny", module="canny")
    img2img = client.img2img(images=[drawing()], prompt="a house", denoising_strength=0.7,
                             controlnet_units=[no_image], alwayson_scripts={}, **SMALL)
    assert img2img.image.size == (64, 64) and "ControlNet 0" in img2img.info["infotexts"][0]


@pytest.mark.parametrize("unit, message", [
    ({"model": "control_tiny_canny", "image": ""}, "ControlNet unit 0 has no image"),
    ({"model": "control_tiny_xl"}, "control_tiny_xl is made for SDXL"),
    ({"model": "control_tiny_canny", "control_mode": "Loudest"}, "control_mode: 'Loudest' is not one of"),
])
def test_bad_units_are_422_with_the_message(cn_server, unit, message):
    body = {"prompt": "x", **SMALL, "alwayson_scripts": {"controlnet": {"args": [
        {"image": png_b64(drawing()), "module": "none", **unit}]}}}
    response = requests.post(cn_server.url + "/sdapi/v1/txt2img", json=body, timeout=60)
    assert response.status_code == 422, response.text
    assert message in response.text
