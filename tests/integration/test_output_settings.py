"""Output settings honoured end to end: a real AppContext with the tiny checkpoint generates (64x64, 2 steps) and
each test checks the files on disk: folder (outdir_*), name (patterns), format (magic bytes), infotext read back
(PNG chunk, JPEG/WebP EXIF UserComment), the .txt beside it, grids, quality and the large-image JPEG copy.

Two jobs really run (txt2img with the default settings, img2img with per-job override_settings); the other tests
save the first job's result again through the service's own save step with other settings, which is the path
every job's images take (settings -> folders, options -> files).
"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from modules.generation.info import model_identity
from modules.generation.service import JobSettings, run_generation, save_result
from modules.images.saving import read_image_info
from modules.types import GenerationRequest
from tests.integration.conftest import loaded_context

PROMPT = "a red cat, on a mat"
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff", "webp": b"RIFF"}
REQUEST = GenerationRequest(prompt=PROMPT, width=64, height=64, steps=2, seed=1234, sampler_name="Euler",
                            batch_size=2)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, tiny_sd15_checkpoint):
    context = loaded_context(tmp_path_factory.mktemp("outputs") / "data", tiny_sd15_checkpoint)
    yield context
    context.close()


@pytest.fixture(scope="module")
def job(ctx):
    """One txt2img job of two images, saved with the default settings."""
    return run_generation(ctx, REQUEST)


@pytest.fixture
def out(tmp_path):
    """A fresh folder per test for the outdir_* settings to point at."""
    return tmp_path


def save(ctx, job, settings: dict, **changes) -> list[Path]:
    """The job's images saved again by the service's save step, with these settings for the job."""
    request = replace(REQUEST, **changes)
    result = replace(job, saved_paths=[])
    save_result(ctx, request, result, JobSettings(ctx.settings, settings), ctx.pipelines.current)
    return [Path(p) for p in result.saved_paths]


def today() -> str:
    return datetime.now().strftime("%Y-%m-%d")


def magic(path: Path) -> str:
    head = path.read_bytes()[:12]
    for fmt, prefix in MAGIC.items():
        if head.startswith(prefix) and (fmt != "webp" or head[8:12] == b"WEBP"):
            return fmt
    return "unknown"


def infotext_of(path: Path) -> str | None:
    with Image.open(path) as image:
        return read_image_info(image)[0]


# ---- folders ----------


def test_txt2img_default_folders_names_and_png_infotext(ctx, job):
    first, second, grid = (Path(p) for p in job.saved_paths)
    day = ctx.paths.data_dir / "outputs" / "txt2img-images" / today()
    assert (first.parent, second.parent) == (day, day)
    assert re.fullmatch(r"\d{5}-1234\.png", first.name) and re.fullmatch(r"\d{5}-1235\.png", second.name)
    assert grid.parent == ctx.paths.data_dir / "outputs" / "txt2img-grids" / today()
    assert re.fullmatch(r"grid-\d{4}\.png", grid.name)
    assert magic(first) == "png" and infotext_of(first) == job.infotexts[0]
    assert infotext_of(second) == job.infotexts[1] and infotext_of(grid) == job.infotexts[0]


def test_img2img_job_with_override_settings_uses_its_folders(ctx, out):
    init = Image.new("RGB", (64, 64), (120, 40, 200))
    settings = {"outdir_img2img_samples": str(out / "i2i"), "outdir_img2img_grids": str(out / "i2i-grids")}
    request = replace(REQUEST, mode="img2img", init_images=(init,), denoising_strength=0.5,
                      override_settings=settings)
    result = run_generation(ctx, request)
    paths = [Path(p) for p in result.saved_paths]
    assert [p.parent for p in paths] == [out / "i2i" / today()] * 2 + [out / "i2i-grids" / today()]
    assert [p.name for p in paths] == ["00000-1234.png", "00001-1235.png", "grid-0000.png"]
    assert infotext_of(paths[0]) == result.infotexts[0] and "Denoising strength: 0.5" in result.infotexts[0]


def test_outdir_txt2img_samples_and_outdir_samples_over_it(ctx, job, out):
    own = save(ctx, job, {"outdir_txt2img_samples": str(out / "t2i")})
    assert own[0] == out / "t2i" / today() / "00000-1234.png"
    common = save(ctx, job, {"outdir_txt2img_samples": str(out / "t2i"), "outdir_samples": str(out / "all")})
    assert common[0] == out / "all" / today() / "00000-1234.png"


def test_outdir_samples_also_takes_img2img_and_relative_paths_are_under_the_data_dir(ctx, job):
    paths = save(ctx, job, {"outdir_img2img_samples": "my-outputs/i2i"}, mode="img2img")
    assert paths[0].parent == ctx.paths.data_dir / "my-outputs" / "i2i" / today()
    paths = save(ctx, job, {"outdir_img2img_samples": "my-outputs/i2i", "outdir_samples": "my-outputs/all"},
                 mode="img2img")
    assert paths[0].parent == ctx.paths.data_dir / "my-outputs" / "all" / today()


def test_outdir_grids_over_the_txt2img_grids_folder_and_grid_save_off(ctx, job, out):
    settings = {"outdir_txt2img_grids": str(out / "t2i-grids"), "outdir_grids": str(out / "grids"),
                "outdir_txt2img_samples": str(out / "t2i")}
    paths = save(ctx, job, settings)
    assert paths[-1] == out / "grids" / today() / "grid-0000.png"
    assert magic(paths[-1]) == "png" and infotext_of(paths[-1]) == job.infotexts[0]
    paths = save(ctx, job, {**settings, "grid_save": False})
    assert [p.parent for p in paths] == [out / "t2i" / today()] * 2


def test_grid_format_and_grid_save_to_dirs(ctx, job, out):
    settings = {"outdir_grids": str(out / "grids"), "grid_format": "jpg", "grid_save_to_dirs": False,
                "outdir_samples": str(out / "s")}
    paths = save(ctx, job, settings)
    assert paths[-1] == out / "grids" / "grid-0000.jpg" and magic(paths[-1]) == "jpg"
    assert paths[0].suffix == ".png"  # samples_format stays png


# ---- format, names, text ----------


@pytest.mark.parametrize("fmt", ["jpg", "webp"])
def test_samples_format_with_exif_infotext(ctx, job, out, fmt):
    paths = save(ctx, job, {"samples_format": fmt, "outdir_samples": str(out)})
    assert paths[0] == out / today() / f"00000-1234.{fmt}" and magic(paths[0]) == fmt
    assert infotext_of(paths[0]) == job.infotexts[0] and infotext_of(paths[1]) == job.infotexts[1]


def test_filename_and_directory_patterns(ctx, job, out):
    settings = {"outdir_samples": str(out), "directories_filename_pattern": "[model_name]/[datetime<%Y%m>]",
                "samples_filename_pattern": "[seed]-[prompt_words]-[steps]-[datetime<%Y%m%d>]-[batch_number]"}
    paths = save(ctx, job, settings)
    now = datetime.now()
    assert paths[0].parent == out / model_identity(ctx.pipelines.current)[0] / now.strftime("%Y%m")
    assert paths[0].name == f"00000-1234-a red cat on a mat-2-{now.strftime('%Y%m%d')}-1.png"
    assert paths[1].name == f"00001-1235-a red cat on a mat-2-{now.strftime('%Y%m%d')}-2.png"


def test_no_number_and_no_subfolder(ctx, job, out):
    settings = {"outdir_samples": str(out), "save_images_add_number": False, "save_to_dirs": False,
                "samples_filename_pattern": "[seed]-[prompt_spaces]"}
    paths = save(ctx, job, settings)
    assert paths[:2] == [out / "1234-a red cat, on a mat.png", out / "1235-a red cat, on a mat.png"]


def test_save_txt_writes_the_infotext_beside_the_image(ctx, job, out):
    paths = save(ctx, job, {"outdir_samples": str(out), "save_txt": True})
    assert paths[0].with_suffix(".txt").read_text(encoding="utf-8") == job.infotexts[0]
    plain = save(ctx, job, {"outdir_samples": str(out / "no-txt")})
    assert not plain[0].with_suffix(".txt").exists()


def test_jpeg_quality_changes_the_file_size(ctx, job, out):
    sizes = {}
    for quality in (10, 95):
        paths = save(ctx, job, {"outdir_samples": str(out / str(quality)), "samples_format": "jpg",
                                "jpeg_quality": quality})
        sizes[quality] = paths[0].stat().st_size
    assert sizes[10] < sizes[95] * 0.8, sizes


def test_export_for_4chan_makes_a_jpeg_copy_of_a_large_image(ctx, job, out):
    # "Large" made small: a file over ~100 bytes, or a side over 32 px.
    settings = {"outdir_samples": str(out / "size"), "img_downscale_threshold": 0.0001}
    path = save(ctx, job, settings)[0]
    copy = path.with_suffix(".jpg")
    assert magic(copy) == "jpg" and infotext_of(copy) == job.infotexts[0]
    with Image.open(copy) as image:
        assert image.size == (64, 64)
    path = save(ctx, job, {"outdir_samples": str(out / "side"), "target_side_length": 32})[0]
    with Image.open(path.with_suffix(".jpg")) as image:
        assert image.size == (32, 32)
    path = save(ctx, job, {**settings, "outdir_samples": str(out / "off"), "export_for_4chan": False})[0]
    assert not path.with_suffix(".jpg").exists()
    path = save(ctx, job, {"outdir_samples": str(out / "small")})[0]  # 64 px, a few KB: not large
    assert not path.with_suffix(".jpg").exists()


# ---- extras ----------


def test_extras_images_go_to_outdir_extras_samples_or_outdir_samples(ctx, job, out):
    from modules.postprocessing.extras import ExtrasRequest, run_extras

    request = ExtrasRequest(images=(("a.png", job.images[0]),), upscaler_1="Lanczos", save=True)
    saved = {}
    for name, settings in (("own", {"outdir_extras_samples": str(out / "extras")}),
                           ("common", {"outdir_extras_samples": str(out / "extras"), "outdir_samples": str(out / "all")})):
        ctx.settings.update(settings)
        try:
            saved[name] = Path(run_extras(ctx, request).saved_paths[0])
        finally:
            ctx.settings.update({"outdir_extras_samples": "outputs/extras-images", "outdir_samples": ""})
    assert saved["own"].parent.parent == out / "extras" and saved["own"].suffix == ".png"
    assert saved["common"].parent.parent == out / "all"


# ---- the UI's Save button ----------


def test_save_button_writes_to_outdir_save(ctx, job, out):
    from webui.ui.components.output import save_selected

    state = {"images": job.images, "infotexts": job.infotexts, "paths": [], "selected": 1}
    ctx.settings.update({"outdir_save": str(out / "saved"), "samples_format": "webp"})
    try:
        save_selected(ctx, state)
    finally:
        ctx.settings.update({"outdir_save": "log/images", "samples_format": "png"})
    [path] = list((out / "saved").iterdir())
    assert path.name == "00000-1235.webp"  # no date folder (use_save_to_dirs_for_ui is off); the seed from infotext
    assert magic(path) == "webp" and infotext_of(path) == job.infotexts[1]
