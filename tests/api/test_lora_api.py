"""/sdapi/v1/loras and /sdapi/v1/refresh-loras (A1111's shapes) and a LoRA tag through /sdapi/v1/txt2img
on the real app (demo checkpoint, LoRA built from the loaded model's own modules)."""
from __future__ import annotations

import pytest
import torch

from tests.api.inprocess import build_app, build_ctx, local_client
from tests.fixtures.loras import kohya_lora, kohya_metadata, write_lora


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora-api")
    ctx = build_ctx(root, load_model=True, lora_dir=str(root / "loras"))
    assert ctx.extensions.info("lora").status == "loaded"
    write_lora(root / "loras" / "film.safetensors", kohya_lora(ctx.pipelines.current.pipe, strength=0.3),
               kohya_metadata("film_grain"))
    with local_client(build_app(ctx)) as client:
        yield client, root
    ctx.close()


def test_list_refresh_and_a_tag_through_txt2img(app):
    client, root = app
    listed = client.get("/sdapi/v1/loras")
    assert listed.status_code == 200, listed.text
    (film,) = listed.json()
    assert film["name"] == "film" and film["alias"] == "film_grain" and film["path"].endswith("film.safetensors")
    assert film["metadata"]["ss_tag_frequency"] == {"set": {"red house": 3}}

    write_lora(root / "loras" / "late" / "ink.safetensors",
               {"lora_unet_x.lora_down.weight": torch.ones(1, 1), "lora_unet_x.lora_up.weight": torch.ones(1, 1)})
    assert [e["name"] for e in client.get("/sdapi/v1/loras").json()] == ["film"]  # scanned once
    assert client.post("/sdapi/v1/refresh-loras").status_code == 200
    assert sorted(e["name"] for e in client.get("/sdapi/v1/loras").json()) == ["film", "ink"]

    body = {"prompt": "a red house <lora:film:0.8> <lora:missing:1>", "width": 64, "height": 64, "steps": 2,
            "seed": 3}
    answer = client.post("/sdapi/v1/txt2img", json=body)
    assert answer.status_code == 200, answer.text
    info = answer.json()["info"]
    assert "<lora:film:0.8>" in info and 'Lora hashes: \\"film: ' in info
    assert "LoRA not found: missing" in info
