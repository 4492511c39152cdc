"""A checkpoint that fails to load (per-job override or /options) is answered with the error, and the server
keeps the model it had: the next txt2img answers 200. In-process, on the demo checkpoint."""
from __future__ import annotations

import pytest

from tests.api.inprocess import build_app, build_ctx, local_client

SMALL = {"prompt": "a boat", "width": 64, "height": 64, "steps": 2, "sampler_name": "Euler"}


@pytest.fixture(scope="module")
def app_ctx(tmp_path_factory):
    ctx = build_ctx(tmp_path_factory.mktemp("failed-load"), load_model=True)
    assert ctx.pipelines.current is not None, ctx.model_error
    # Neither is a checkpoint: the pickle only fails when loaded, the safetensors at its header check.
    (ctx.paths.ckpt_dirs[0] / "broken.ckpt").write_bytes(b"not a checkpoint")
    (ctx.paths.ckpt_dirs[0] / "broken-header.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    ctx.checkpoints.refresh()
    with local_client(build_app(ctx)) as client:
        yield client, ctx
    ctx.close()


@pytest.mark.parametrize("name", ["broken", "broken-header"])
def test_a_bad_override_checkpoint_fails_that_request_only(app_ctx, name):
    client, ctx = app_ctx
    before = client.get("/sdapi/v1/options").json()["sd_model_checkpoint"]
    failed = client.post("/sdapi/v1/txt2img", json={**SMALL, "override_settings": {"sd_model_checkpoint": name}})
    assert failed.status_code >= 400 and name in failed.json()["detail"], failed.text
    after = client.post("/sdapi/v1/txt2img", json=SMALL)
    assert after.status_code == 200, after.text
    assert len(after.json()["images"]) == 1
    assert client.get("/sdapi/v1/options").json()["sd_model_checkpoint"] == before


def test_a_bad_model_switch_in_options_keeps_the_model(app_ctx):
    client, ctx = app_ctx
    before = ctx.pipelines.current.checkpoint.path
    failed = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "broken"})
    assert failed.status_code >= 400, failed.text
    assert ctx.pipelines.current.checkpoint.path == before
    assert client.post("/sdapi/v1/txt2img", json=SMALL).status_code == 200
