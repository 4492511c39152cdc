"""runner.final_outputs / job_progress without a browser: what the gallery is handed (cost of the UI path)."""
from __future__ import annotations

from pathlib import Path

from gradio.utils import get_upload_folder
from PIL import Image, PngImagePlugin

from modules.types import GenerationResult
from webui.ui.components import runner


class FinishedJob:
    """The few Job fields final_outputs reads."""

    def __init__(self, result):
        self.result, self.error, self.state = result, None, "done"


def saved_png(tmp_path: Path, name: str, colour) -> tuple[Image.Image, Path]:
    image = Image.new("RGB", (24, 16), colour)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cube\nSteps: 3")
    path = tmp_path / name
    image.save(path, pnginfo=info)
    return image, path


def test_gallery_gets_the_saved_png_from_gradios_cache_without_a_re_encode(tmp_path, monkeypatch):
    first, first_path = saved_png(tmp_path, "00001-1.png", (200, 10, 10))
    second, second_path = saved_png(tmp_path, "00002-2.png", (10, 200, 10))
    result = GenerationResult(images=[first, second], infotexts=["a", "b"],
                              saved_paths=[str(first_path), str(second_path)])
    encodes = []
    monkeypatch.setattr(Image.Image, "save", lambda self, *a, **k: encodes.append(a))
    gallery, *_rest, state = runner.final_outputs(FinishedJob(result), 0.5)
    assert encodes == []  # no PNG encode of the result on the UI path
    cache = Path(get_upload_folder()).resolve()
    assert [isinstance(item, str) for item in gallery] == [True, True]
    for item, original in zip(gallery, (first_path, second_path)):
        assert Path(item).resolve().is_relative_to(cache)  # Gradio serves it as is: no copy, no check failure
        assert Path(item).read_bytes() == original.read_bytes()
    assert state["images"] == [first, second]  # send-to and Save still get the images themselves


def test_gallery_falls_back_to_the_image_when_nothing_was_saved(tmp_path):
    image = Image.new("RGB", (8, 8), (1, 2, 3))
    lossy = tmp_path / "00003-3.jpg"
    image.save(lossy)
    result = GenerationResult(images=[image, image], infotexts=["a", "b"], saved_paths=[str(lossy)])
    gallery, *_ = runner.final_outputs(FinishedJob(result), 0.5)
    assert gallery == [image, image]  # a lossy saved file would show other pixels than were generated
