"""An A1111 script that saves its own files (`images.save_image(img, p.outpath_samples, ...)`, as many do) saves
them where the outdir_* settings say, with A1111's subfolder and name rules for images and grids."""
from __future__ import annotations

from datetime import datetime

from PIL import Image

from modules.extensions.hooks import GenerationInfo
from modules.images.saving import read_image_info
from modules.types import GenerationRequest, GenerationResult
from tests.unit.a1111.conftest import write_a1111_extension
from tests.unit.a1111.test_loading import load

SAVER = """
    from modules import images, processing, scripts


    class Saver(scripts.Script):
        def title(self):
            return "Saver"

        def run(self, p):
            processed = processing.process_images(p)
            image = processed.images[0]
            images.save_image(image, p.outpath_samples, "", seed=processed.seed, prompt=p.prompt,
                              extension="png", info=processed.info, p=p)
            images.save_image(image, p.outpath_grids, "saver", seed=processed.seed, prompt=p.prompt,
                              extension="jpg", info=processed.info, grid=True, short_filename=True, p=p)
            images.save_image(image, p.outpath_samples, "", extension="png", info=processed.info,
                              forced_filename="forced", save_to_dirs=False)
            return processed
"""


def core(request: GenerationRequest) -> GenerationResult:
    """The core generation, faked: one solid image with its infotext."""
    info = f"{request.prompt}\nSteps: {request.steps}, Seed: {request.seed}, Size: 16x16"
    return GenerationResult(images=[Image.new("RGB", (16, 16), "red")], all_seeds=[request.seed],
                            all_prompts=[request.prompt], infotexts=[info])


def test_script_saves_follow_the_output_settings(app_ctx, tmp_path):
    write_a1111_extension(tmp_path / "ext", "saver", {"saver.py": SAVER})
    compat, _, infos = load(app_ctx, tmp_path / "ext")
    assert infos["saver"].status == "loaded", infos["saver"].error
    out = tmp_path / "out"
    request = GenerationRequest(prompt="a cat", seed=77, steps=3, script_name="saver",
                                override_settings={"outdir_txt2img_samples": str(out / "t2i"),
                                                   "outdir_grids": str(out / "grids")})
    compat._run_job(request, GenerationInfo(request), core)
    day = datetime.now().strftime("%Y-%m-%d")
    [sample] = (out / "t2i" / day).iterdir()
    assert sample.name == "00000-77.png"
    with Image.open(sample) as image:
        assert read_image_info(image)[0].startswith("a cat\nSteps: 3, Seed: 77")
    assert [p.name for p in (out / "grids" / day).iterdir()] == ["saver-0000.jpg"]
    assert (out / "t2i" / "forced.png").is_file()  # forced_filename, no subfolder
