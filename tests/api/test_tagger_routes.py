"""Interrogation routes of the dataset_tools extension on a real app: A1111's /sdapi/v1/interrogate and
sd-webui-wd14-tagger's /tagger/v1 routes, with the tiny WD14 tagger (known confidences)."""
from __future__ import annotations

import pytest
from PIL import Image

from tests.api.inprocess import build_app, build_ctx, local_client, png_b64
from tests.fixtures.taggers import write_tiny_tagger

RED = png_b64(Image.new("RGB", (64, 64), (255, 0, 0)))


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("tagger-api")
    ctx = build_ctx(root)
    # written after start-up: taggers are looked up when asked for, not at setup
    write_tiny_tagger(ctx.paths.models_dir / "interrogators" / "tiny-wd14")
    with local_client(build_app(ctx)) as test_client:
        yield test_client
    ctx.close()


def test_interrogators_lists_the_wd14_folders(client):
    answer = client.get("/tagger/v1/interrogators")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"models": ["tiny-wd14"]}


def test_tagger_interrogate_current_shape(client):
    answer = client.post("/tagger/v1/interrogate",
                         json={"image": RED, "model": "tiny-wd14", "threshold": 0.55})
    assert answer.status_code == 200, answer.text
    caption = answer.json()["caption"]
    assert set(caption) == {"tag", "rating"}
    assert caption["tag"] == pytest.approx({"red_theme": 1.0, "1girl": 0.8, "solo": 0.6, "hatsune_miku": 0.9})
    assert caption["rating"] == pytest.approx({"general": 0.7, "sensitive": 0.2, "questionable": 0.05,
                                               "explicit": 0.01})


def test_tagger_interrogate_unknown_model_is_404(client):
    answer = client.post("/tagger/v1/interrogate", json={"image": RED, "model": "wd14-vit-v2"})
    assert answer.status_code == 404
    assert "wd14-vit-v2" in answer.json()["detail"] and "models/interrogators" in answer.json()["detail"]


def test_sdapi_interrogate_with_a_wd14_tagger(client):
    answer = client.post("/sdapi/v1/interrogate", json={"image": "data:image/png;base64," + RED,
                                                        "model": "tiny-wd14"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"caption": r"red theme, hatsune miku, 1girl, solo, ^_^, star \(symbol\)"}


@pytest.mark.parametrize("model, file", [("clip", "models/BLIP/model_base_caption_capfilt_large.pth"),
                                         ("deepdanbooru",
                                          "models/torch_deepdanbooru/model-resnet_custom_v3.pt")])
def test_sdapi_interrogate_without_weights_names_the_file(client, model, file):
    answer = client.post("/sdapi/v1/interrogate", json={"image": RED, "model": model})
    assert answer.status_code == 422
    assert file in answer.json()["detail"]


def test_sdapi_interrogate_errors(client):
    assert client.post("/sdapi/v1/interrogate", json={"image": RED, "model": "nope"}).status_code == 404
    bad = client.post("/sdapi/v1/interrogate", json={"image": "!!notbase64", "model": "tiny-wd14"})
    assert bad.status_code == 422 and "image" in bad.json()["detail"]


def test_routes_are_documented(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/sdapi/v1/interrogate", "/tagger/v1/interrogate", "/tagger/v1/interrogators",
                 "/dataset/v1/caption", "/dataset/v1/tags"):
        assert path in paths
    assert paths["/tagger/v1/interrogate"]["post"]["description"]


def test_interrogate_follows_the_settings(client):
    options = client.get("/sdapi/v1/options").json()
    assert options["tagger_general_threshold"] == 0.35 and options["tagger_exclude"] == ""
    changed = client.post("/sdapi/v1/options", json={"tagger_general_threshold": 0.55, "tagger_exclude": "solo",
                                                     "tagger_additional": "sks", "tagger_include_ratings": True})
    assert changed.status_code == 200, changed.text
    try:
        answer = client.post("/sdapi/v1/interrogate", json={"image": RED, "model": "tiny-wd14"})
        assert answer.json() == {"caption": "sks, general, red theme, hatsune miku, 1girl"}
    finally:
        client.post("/sdapi/v1/options", json={"tagger_general_threshold": 0.35, "tagger_exclude": "",
                                               "tagger_additional": "", "tagger_include_ratings": False})
