"""Train -> Preprocess page logic (extensions/dataset_tools/ui_preprocess.py) on a real job queue: form ->
job -> progress -> report, Interrupt, refusals; and the gradio form builds."""
from __future__ import annotations

import importlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from modules.extensions.api import ExtensionApi
from modules.extensions.loader import import_extension_package
from modules.jobs.queue import JobQueue

ROOT = Path(__file__).resolve().parents[3]
package = import_extension_package("dataset_tools", ROOT / "extensions" / "dataset_tools")
ui = importlib.import_module(f"{package.__name__}.ui_preprocess")


@pytest.fixture
def api(tmp_path):
    queue = JobQueue()
    paths = SimpleNamespace(models_dir=tmp_path / "models", data_dir=tmp_path / "data")
    flags = SimpleNamespace(listen=False, enable_insecure_extension_access=False)
    yield ExtensionApi("dataset_tools", ROOT / "extensions" / "dataset_tools", settings=None, paths=paths,
                       flags=flags, jobs=queue)
    queue.shutdown()


def form(**values):
    defaults = dict(zip(ui.FIELDS, ["", "", 64, 64, "center", "stretch", False, 0.9, 0.15, 0.5, False, 0.5, 0.2,
                                    384, 768, "area", 0, "", False, "ignore", ui.NO_TAGGER]))
    return {**defaults, **values}


def folder(root: Path, count: int) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(root / f"{i:03d}.png")
    (root / "junk.bin").write_bytes(b"\x00\x01")
    return root


def test_a_run_from_the_form_ends_with_the_report(api, tmp_path):
    src = folder(tmp_path / "data" / "raw", 3)
    job_id = ui.start(api, form(source_dir="raw", destination_dir="train", width=64.0, repeats=2.0, name="x"))
    updates = list(ui.follow(api, job_id, poll_s=0.01))
    text, finished = updates[-1]
    assert finished and all(not f for _, f in updates[:-1])
    assert "3 of 4 files processed, 3 images written" in text and "junk.bin: not an image file" in text
    assert sorted(p.name for p in (tmp_path / "data" / "train" / "2_x").iterdir()) == [
        "00000-0-000.png", "00001-0-001.png", "00002-0-002.png"]
    assert sorted(p.name for p in src.iterdir()) == ["000.png", "001.png", "002.png", "junk.bin"]


def test_interrupt_from_the_page_stops_the_run(api, tmp_path):
    folder(tmp_path / "data" / "raw", 200)
    job_id = ui.start(api, form(source_dir="raw", destination_dir="train", crop="focal"))
    for text, finished in ui.follow(api, job_id, poll_s=0.01):
        if "<progress" in text and "Preprocess " in text:
            assert "ETA" in text or "%" in text
            api.cancel_job(job_id)
        if finished:
            break
    assert "(interrupted)" in text
    assert api.job(job_id).state == "interrupted"


def test_refusals_name_the_problem(api, tmp_path):
    folder(tmp_path / "data" / "raw", 1)
    with pytest.raises(ValueError, match="never writes into its source"):
        ui.start(api, form(source_dir="raw", destination_dir="raw/out"))
    with pytest.raises(ValueError) as caught:
        ui.start(api, form(source_dir="raw", destination_dir="out", width=4))
    assert ui._reason(caught.value).startswith("width: ")


def test_status_shows_percent_and_eta():
    text = ui.status_html("running", 0.25, 12.4, "Preprocess 3/12: a.png")
    assert "value='25'" in text and "ETA 12 s" in text and "a.png" in text
    assert "waiting for the job queue" in ui.status_html("queued", 0, 0, "")


def test_the_form_builds(api):
    gr = pytest.importorskip("gradio")
    with gr.Blocks() as blocks:
        ui.build(api)
    ids = {getattr(block, "elem_id", None) for block in blocks.blocks.values()}
    assert {"preprocess_src", "preprocess_dst", "preprocess_crop", "preprocess_run", "preprocess_interrupt",
            "preprocess_status", "preprocess_focal_debug", "preprocess_tagger"} <= ids
