"""`/refresh-embeddings` refreshes the embeddings generation uses (ctx.embeddings), and `/embeddings` lists
that same database. In-process, on the demo checkpoint."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from tests.api.inprocess import build_app, build_ctx, local_client

SMALL = {"width": 64, "height": 64, "steps": 2, "sampler_name": "Euler", "seed": 4}


@pytest.fixture(scope="module")
def app_ctx(tmp_path_factory):
    ctx = build_ctx(tmp_path_factory.mktemp("embeddings"), load_model=True)
    assert ctx.pipelines.current is not None, ctx.model_error
    with local_client(build_app(ctx)) as client:
        yield client, ctx
    ctx.close()


def test_a_refreshed_embedding_is_listed_and_reaches_generation(app_ctx):
    client, ctx = app_ctx
    assert "glowstyle" not in client.get("/sdapi/v1/embeddings").json()["loaded"]
    width = ctx.pipelines.current.pipe.text_encoder.config.hidden_size
    save_file({"emb_params": torch.randn(2, width, generator=torch.Generator().manual_seed(3))},
              str(ctx.paths.embeddings_dir / "glowstyle.safetensors"))
    assert client.post("/sdapi/v1/refresh-embeddings").status_code == 200

    listed = client.get("/sdapi/v1/embeddings").json()
    assert listed["loaded"]["glowstyle"]["vectors"] == 2 and listed["loaded"]["glowstyle"]["shape"] == width
    answer = client.post("/sdapi/v1/txt2img", json={**SMALL, "prompt": "a house, glowstyle"})
    assert answer.status_code == 200, answer.text
    info = json.loads(answer.json()["info"])
    assert "TI hashes" in info["infotexts"][0] and "glowstyle" in info["infotexts"][0]
