"""/dataset/v1/caption and /dataset/v1/tags on a real app: caption a folder with the tiny WD14 tagger,
read the frequencies, replace a tag across the set and undo it byte for byte; the --listen folder rule."""
from __future__ import annotations

import pytest
from PIL import Image

from tests.api.inprocess import build_app, build_ctx, local_client
from tests.fixtures.taggers import write_tiny_tagger


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    ctx = build_ctx(tmp_path_factory.mktemp("dataset-api"))
    write_tiny_tagger(ctx.paths.models_dir / "interrogators" / "tiny-wd14")
    with local_client(build_app(ctx)) as test_client:
        yield test_client, ctx
    ctx.close()


def make_set(folder, n=4):
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (32, 32), (255, 0, 0) if i % 2 else (0, 0, 255)).save(folder / f"{i:02d}.png")
    return folder


def test_caption_tags_replace_and_undo(app, tmp_path):
    client, _ctx = app
    folder = make_set(tmp_path / "set")
    answer = client.post("/dataset/v1/caption", json={
        "dir": str(folder), "tagger": "tiny-wd14", "general_threshold": 0.55, "character_threshold": 0.95,
        "exclude_tags": ["solo"], "additional_tags": ["sks"]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"written": ["00.txt", "01.txt", "02.txt", "03.txt"], "skipped": []}
    assert (folder / "01.txt").read_text() == "sks, red theme, 1girl"
    assert (folder / "00.txt").read_text() == "sks, blue sky, 1girl"
    before = {p.name: p.read_bytes() for p in folder.glob("*.txt")}

    tags = client.get("/dataset/v1/tags", params={"dir": str(folder)}).json()
    assert tags["images"] == 4 and tags["backups"] == 0
    assert tags["tags"] == [{"tag": "1girl", "count": 4}, {"tag": "sks", "count": 4},
                            {"tag": "blue sky", "count": 2}, {"tag": "red theme", "count": 2}]

    edit = client.post("/dataset/v1/tags", json={"dir": str(folder), "action": "replace", "tags": ["1girl"],
                                                 "replace_with": "1boy"})
    assert edit.status_code == 200, edit.text
    assert edit.json()["changed"] == ["00.txt", "01.txt", "02.txt", "03.txt"] and edit.json()["backup"]
    assert (folder / "01.txt").read_text() == "sks, red theme, 1boy"
    undo = client.post("/dataset/v1/tags", json={"dir": str(folder), "action": "undo"})
    assert undo.status_code == 200, undo.text
    assert {p.name: p.read_bytes() for p in folder.glob("*.txt")} == before
    again = client.post("/dataset/v1/tags", json={"dir": str(folder), "action": "undo"})
    assert again.status_code == 409 and "nothing to undo" in again.json()["detail"]


def test_errors(app, tmp_path):
    client, _ctx = app
    folder = make_set(tmp_path / "set", n=1)
    missing = client.get("/dataset/v1/tags", params={"dir": str(tmp_path / "nope")})
    assert missing.status_code == 404 and "no such folder" in missing.json()["detail"]
    unknown = client.post("/dataset/v1/caption", json={"dir": str(folder), "tagger": "nope"})
    assert unknown.status_code == 404
    weights = client.post("/dataset/v1/caption", json={"dir": str(folder), "tagger": "deepdanbooru"})
    assert weights.status_code == 422 and "model-resnet_custom_v3.pt" in weights.json()["detail"]
    assert not (folder / "00.txt").exists()
    bad = client.post("/dataset/v1/tags", json={"dir": str(folder), "action": "remove", "tags": []})
    assert bad.status_code == 422 and "no tags" in bad.json()["detail"]


def test_listen_keeps_folders_inside_the_data_dir(tmp_path):
    ctx = build_ctx(tmp_path / "listen", listen=True)
    try:
        inside = make_set(ctx.paths.data_dir / "datasets" / "a", n=1)
        outside = make_set(tmp_path / "outside", n=1)
        with local_client(build_app(ctx)) as client:
            refused = client.get("/dataset/v1/tags", params={"dir": str(outside)})
            assert refused.status_code == 403
            assert "--enable-insecure-extension-access" in refused.json()["detail"]
            assert client.post("/dataset/v1/caption", json={"dir": str(outside)}).status_code == 403
            assert client.get("/dataset/v1/tags", params={"dir": "datasets/a"}).status_code == 200
            assert client.get("/dataset/v1/tags", params={"dir": str(inside / ".." / ".." / ".." / "..")}) \
                .status_code == 403
    finally:
        ctx.close()


def test_caption_in_the_background_is_a_job_with_the_same_report(app, tmp_path):
    client, ctx = app
    folder = make_set(tmp_path / "bg", n=3)
    answer = client.post("/dataset/v1/caption", json={"dir": str(folder), "tagger": "tiny-wd14",
                                                      "general_threshold": 0.99, "background": True})
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    assert answer.headers["location"] == f"/sdapi/v1/jobs/{job_id}"
    result = client.get(f"/sdapi/v1/jobs/{job_id}/result", params={"wait": 30})
    assert result.json() == {"written": ["00.txt", "01.txt", "02.txt"], "skipped": []}
    assert (folder / "01.txt").read_text() == "red theme, hatsune miku"
    status = client.get(f"/sdapi/v1/jobs/{job_id}").json()
    assert status["state"] == "done" and status["progress"] == 1.0
    assert status["kind"] == "extension:dataset_tools/caption"
    # An unknown tagger is refused at once, nothing queued.
    before = len(ctx.jobs.list())
    refused = client.post("/dataset/v1/caption",
                          json={"dir": str(folder), "tagger": "nope", "background": True})
    assert refused.status_code == 404 and len(ctx.jobs.list()) == before
