"""POST /dataset/v1/preprocess through the job API, in-process: the real app with the built-in dataset_tools
extension loaded. 202 with the job id, progress and cancel at /sdapi/v1/jobs/{id}, the report at .../result."""
from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image

from modules.context import build_context
from modules.extensions.api import ExtensionApi
from modules.extensions.loader import import_extension_package
from modules.flags import Flags
from tests.api.inprocess import blocked_queue, build_app, local_client, wait_until

ROOT = Path(__file__).resolve().parents[2]


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def app_ctx(tmp_path_factory):
    data = tmp_path_factory.mktemp("preprocess") / "data"
    flags = replace(Flags(nowebui=True, no_download_sd_model=True), data_dir=str(data))
    ctx = build_context(flags, ROOT)  # the project's built-in extensions, dataset_tools among them
    info = ctx.extensions.info("dataset_tools")
    assert info is not None and info.status == "loaded", ctx.extensions.error_text("dataset_tools")
    with local_client(build_app(ctx)) as client:
        yield client, ctx, data
    ctx.close()


@pytest.fixture(scope="module")
def mixed(app_ctx):
    """data/train/src: two good images, a corrupt PNG, a text file and a 10x10 image."""
    _, _, data = app_ctx
    src = data / "train" / "src"
    src.mkdir(parents=True)
    noise(96, 64, 1).save(src / "red_car.png")
    noise(64, 96, 2).save(src / "blue_car.jpg")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00not a png" * 30)
    (src / "readme.txt").write_text("these are cars")
    noise(10, 10, 3).save(src / "tiny.png")
    return src


def test_preprocess_job_reports_written_and_skipped_files(app_ctx, mixed):
    client, ctx, data = app_ctx
    body = {"source_dir": "train/src", "destination_dir": "train/out", "width": 64, "height": 64, "crop": "focal",
            "flip": True, "repeats": 5, "name": "car", "caption_filename": True}
    answer = client.post("/dataset/v1/preprocess", json=body)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    assert answer.headers["location"] == f"/sdapi/v1/jobs/{job_id}"
    assert answer.json()["state"] in ("queued", "running", "done")
    result = client.get(f"/sdapi/v1/jobs/{job_id}/result", params={"wait": 30})
    assert result.status_code == 200, result.text
    report = result.json()
    out = (data / "train" / "out" / "5_car").resolve()
    assert sorted(Path(p).name for p in report["written"]) == [
        "00000-0-blue_car.png", "00000-1-blue_car.png", "00003-0-red_car.png", "00003-1-red_car.png"]
    assert all(Path(p).parent == out and Image.open(p).size == (64, 64) for p in report["written"])
    assert (out / "00003-0-red_car.txt").read_text() == "red car"
    skipped = {Path(s["file"]).name: s["reason"] for s in report["skipped"]}
    assert set(skipped) == {"broken.png", "readme.txt", "tiny.png"}
    assert skipped["readme.txt"] == "not an image file" and "10x10" in skipped["tiny.png"]
    status = client.get(f"/sdapi/v1/jobs/{job_id}").json()
    assert status["state"] == "done" and status["progress"] == 1.0 and status["has_result"] is True
    assert status["kind"] == "extension:dataset_tools/preprocess"


def test_progress_and_interrupt_through_the_job_api(app_ctx, tmp_path):
    client, ctx, data = app_ctx
    src = data / "many"
    src.mkdir()
    for i in range(120):  # ~1 s of work: room to interrupt it half-way
        noise(256, 192, i).save(src / f"img{i:02d}.png")
    body = {"source_dir": str(src), "destination_dir": str(data / "many_out"), "width": 64, "height": 64,
            "crop": "focal"}
    with blocked_queue(ctx):
        job_id = client.post("/dataset/v1/preprocess", json=body).json()["id"]
        queued = client.get(f"/sdapi/v1/jobs/{job_id}").json()
        assert queued["state"] == "queued" and queued["position"] == 1
    # Running: files done show as progress (0..1) and the text names the file.
    running = wait_until(lambda: (s := client.get(f"/sdapi/v1/jobs/{job_id}").json())["progress"] > 0 and s)
    assert running["state"] in ("running", "done") and running["textinfo"].startswith("Preprocess ")
    client.delete(f"/sdapi/v1/jobs/{job_id}")
    report = client.get(f"/sdapi/v1/jobs/{job_id}/result", params={"wait": 30}).json()
    assert report["interrupted"] is True and 0 < report["processed"] < 120
    assert client.get(f"/sdapi/v1/jobs/{job_id}").json()["state"] == "interrupted"


def test_a_cancelled_job_has_no_result(app_ctx, mixed):
    client, ctx, _ = app_ctx
    with blocked_queue(ctx):
        job_id = client.post("/dataset/v1/preprocess", json={"source_dir": "train/src",
                                                              "destination_dir": "train/out2"}).json()["id"]
        assert client.delete(f"/sdapi/v1/jobs/{job_id}").json()["state"] == "cancelled"
    assert client.get(f"/sdapi/v1/jobs/{job_id}/result").status_code == 409


@pytest.mark.parametrize("body, status, words", [
    ({"source_dir": "train/src", "destination_dir": "train/src/out"}, 422, "never writes into its source"),
    ({"source_dir": "train/missing", "destination_dir": "train/x"}, 422, "does not exist"),
    ({"source_dir": "train/src", "destination_dir": "train/x", "crop": "zoom"}, 422, "crop"),
    ({"source_dir": "train/src", "destination_dir": "train/x", "tagger": "no-such-tagger"}, 404, "no-such-tagger"),
])
def test_bad_requests_are_refused_before_queueing(app_ctx, mixed, body, status, words):
    client, ctx, _ = app_ctx
    before = len(ctx.jobs.list())
    answer = client.post("/dataset/v1/preprocess", json=body)
    assert answer.status_code == status, answer.text
    assert words in answer.text
    assert len(ctx.jobs.list()) == before


def listen_client(tmp_path, insecure: bool):
    """Only the preprocess route, on an app whose flags say --listen (no job is ever queued here)."""
    from fastapi.testclient import TestClient

    package = import_extension_package("dataset_tools", ROOT / "extensions" / "dataset_tools")
    routes = importlib.import_module(f"{package.__name__}.routes_preprocess")
    paths = SimpleNamespace(models_dir=tmp_path / "models", data_dir=tmp_path / "data")
    flags = SimpleNamespace(listen=True, enable_insecure_extension_access=insecure)
    api = ExtensionApi("dataset_tools", ROOT / "extensions" / "dataset_tools", settings=None, paths=paths,
                       flags=flags, jobs=SimpleNamespace(submit=None))
    routes.add_routes(api)
    app = FastAPI()
    for route in api.contributions.routes:
        app.add_api_route(route.path, route.endpoint, methods=list(route.methods))
    return TestClient(app)


@pytest.mark.parametrize("insecure", [False, True])
def test_listen_keeps_folders_inside_the_data_dir(tmp_path, insecure):
    outside = tmp_path / "outside"
    outside.mkdir()
    answer = listen_client(tmp_path, insecure).post(
        "/dataset/v1/preprocess", json={"source_dir": str(outside), "destination_dir": str(outside)})
    if insecure:  # past the folder rule: writing into the source is what is refused
        assert answer.status_code == 422 and "never writes into its source" in answer.text, answer.text
    else:
        assert answer.status_code == 403, answer.text
        assert "--enable-insecure-extension-access" in answer.json()["detail"]


def test_the_route_is_documented_in_openapi(app_ctx):
    client, _, _ = app_ctx
    spec = client.get("/openapi.json").json()
    route = spec["paths"]["/dataset/v1/preprocess"]["post"]
    assert "202" in route["description"] and "/sdapi/v1/jobs/{id}/result" in route["description"]
    fields = spec["components"]["schemas"]["PreprocessRequest"]["properties"]
    assert {"source_dir", "destination_dir", "width", "height", "crop", "flip", "repeats", "name",
            "caption_filename", "tagger"} <= set(fields)
    assert set(fields["crop"]["enum"]) == {"focal", "center", "auto-size", "split", "none"}


def test_focal_weights_are_settings(app_ctx):
    client, ctx, _ = app_ctx
    options = client.get("/sdapi/v1/options").json()
    assert (options["dataset_focal_face_weight"], options["dataset_focal_entropy_weight"],
            options["dataset_focal_edges_weight"]) == (0.9, 0.15, 0.5)
    spec = next(s for s in ctx.settings.specs() if s.key == "dataset_focal_face_weight")
    assert spec.section == "dataset_preprocess"
