"""The Extras tab's step fields (step:<name>:<arg>) become the request's steps: only enabled steps, their
widget values as args, for every mode (single image, uploaded batch, folder). No server, no browser."""
from __future__ import annotations

from types import SimpleNamespace

from PIL import Image

from webui.ui.tabs.extras import extras_request, steps_from_values


def test_only_enabled_steps_travel_with_their_args():
    values = {"mode": "single_image", "step:Create flipped copies:enable": True,
              "step:Create flipped copies:option": ["Vertical"], "step:Caption:enable": False,
              "step:Caption:tagger": "tiny-wd14", "upscaler_1": "None"}
    assert steps_from_values(values) == {"Create flipped copies": {"enable": True, "option": ["Vertical"]}}
    assert values == {"mode": "single_image", "upscaler_1": "None"}  # the step fields are taken out


def test_the_request_carries_the_steps_in_every_mode(tmp_path):
    source = tmp_path / "a.png"
    Image.new("RGB", (16, 16)).save(source)
    ctx = SimpleNamespace(flags=SimpleNamespace(listen=False), paths=SimpleNamespace(data_dir=tmp_path))
    fields = {"step:Auto-sized crop:enable": True, "step:Auto-sized crop:max_side": 512}
    for mode, extra in (("single_image", {"image": str(source)}), ("batch_process", {"files": [str(source)]}),
                        ("batch_from_directory", {"input_dir": str(tmp_path)})):
        request = extras_request(ctx, {"mode": mode, **extra, **fields})
        assert request.steps == {"Auto-sized crop": {"enable": True, "max_side": 512}}, mode
