"""A1111's file-name and directory patterns: tokens with arguments, tokens that drop their leading text, nested
folders, and which folder each outdir_* setting picks."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image

from modules.images.filenames import expand_directory, expand_pattern, name_tokens
from modules.images.outputs import OutputDirs
from modules.images.saving import SaveOptions, large_copy_size, save_image
from modules.types import GenerationRequest

NOW = datetime(2024, 5, 6, 7, 8, 9)


def tokens(**changes):
    request = GenerationRequest(prompt="a red cat, on a mat", negative_prompt="dog", steps=20, cfg_scale=7.5,
                                sampler_name="Euler a", width=64, height=32, **changes)
    return name_tokens(request, seed=42, model_name="tiny", model_hash="abcd1234")


def test_datetime_with_format_and_time_zone():
    assert expand_pattern("[datetime]", {}, now=NOW) == "20240506070809"
    assert expand_pattern("[datetime<%Y%m%d>]", {}, now=NOW) == "20240506"
    assert expand_pattern("[DATETIME<%Y-%m-%d_%H>]", {}, now=NOW) == "2024-05-06_07"
    utc = datetime(2024, 5, 6, 23, 0, tzinfo=timezone.utc)
    assert expand_pattern("[datetime<%Y%m%d %H><Asia/Tokyo>]", {}, now=utc) == "20240507 08"
    assert expand_pattern("[datetime<%H><No/Such_Zone>]", {}, now=utc) == "23"  # unknown zone: as given
    assert expand_pattern("[datetime<>]", {}, now=NOW) == "20240506070809"  # empty format: the default


def test_prompt_tokens():
    t = tokens()
    assert expand_pattern("[prompt]", t) == "a_red_cat,_on_a_mat"  # A1111's [prompt] has no spaces
    assert expand_pattern("[prompt_spaces]", t) == "a red cat, on a mat"
    assert expand_pattern("[prompt_words]", t) == "a red cat on a mat"
    assert expand_pattern("[prompt_words]", t, prompt_words=2) == "a red"
    assert len(expand_pattern("[prompt_hash]", t)) == 8
    assert expand_pattern("[prompt_hash]", t) != expand_pattern("[full_prompt_hash]", t)


def test_hasprompt_picks_words_found_or_their_defaults():
    t = tokens()
    assert expand_pattern("[hasprompt<cat|nocat><dog|nodog><mat>]", t) == "catnodogmat"
    assert expand_pattern("[hasprompt<horse>]", t) == ""


def test_batch_and_generation_numbers_drop_their_leading_text_on_a_single_image():
    single = tokens()
    assert expand_pattern("[seed]-[batch_number]-[generation_number]", single) == "42"
    request = GenerationRequest(prompt="p", batch_size=2, n_iter=2)
    third = name_tokens(request, seed=3, index=2, all_seeds=[1, 2, 3, 4])
    assert expand_pattern("[seed]-[batch_number]-[generation_number]", third) == "3-1-3"
    assert expand_pattern("[seed_first]-[seed_last]", third) == "1-4"
    assert expand_pattern("x[seed_last]", single) == ""


def test_other_tokens_and_unknown_ones():
    t = tokens(styles=("Style A", "None"), clip_skip=2)
    pattern = "[steps]-[cfg]-[sampler]-[width]x[height]-[model_name]-[model_hash]-[styles]-[clip_skip]-[none]"
    assert expand_pattern(pattern, t) == "20-7.5-Euler a-64x32-tiny-abcd1234-Style A-2-"
    assert expand_pattern("[denoising]", tokens(mode="img2img", denoising_strength=0.45)) == "0.45"
    assert expand_pattern("a-[denoising]", t) == ""  # txt2img without hires fix has none
    assert expand_pattern("[Seed]-[nope]-[nope<x>]", t) == "42-[nope]-[nope]"


def test_image_hash_hashes_the_pixels(tmp_path):
    red, blue = Image.new("RGB", (4, 4), "red"), Image.new("RGB", (4, 4), "blue")
    options = SaveOptions(filename_pattern="[image_hash<10>]", directory_pattern="", add_number=False)
    a, b = save_image(red, tmp_path, options), save_image(blue, tmp_path, options)
    assert len(a.stem) == 10 and a.stem != b.stem


def test_directory_patterns_may_nest_folders_but_not_climb():
    t = tokens()
    assert expand_directory("[model_name]/[date]", t, now=NOW) == "tiny/2024-05-06"
    assert expand_directory("../[model_name]\\..\\x", t, now=NOW) == "tiny/x"
    # A value is one folder name: a prompt with slashes cannot add folders.
    assert expand_directory("[prompt_spaces]", {"prompt": "a/b/../c"}, now=NOW) == "ab..c"


def test_options_follow_a1111_defaults_for_empty_patterns():
    assert SaveOptions.from_settings({}).filename_pattern == "[seed]"
    flat = SaveOptions.from_settings({"save_to_dirs": False})
    assert (flat.filename_pattern, flat.directory_pattern) == ("[seed]-[prompt_spaces]", "")
    assert SaveOptions.from_settings({"directories_filename_pattern": ""}).directory_pattern == "[prompt_words]"
    button = SaveOptions.for_save_button({})
    assert (button.filename_pattern, button.directory_pattern) == ("[seed]", "")
    assert SaveOptions.for_save_button({"use_save_to_dirs_for_ui": True}).directory_pattern == "[date]"


def test_no_number_and_no_name_still_gets_a_number(tmp_path):
    options = SaveOptions(filename_pattern="[none]", directory_pattern="", add_number=False)
    assert save_image(Image.new("RGB", (4, 4)), tmp_path, options).name == "00000.png"


def test_output_dirs_follow_a1111_rules(tmp_path):
    dirs = OutputDirs.from_settings({}, tmp_path)
    assert dirs.folder("txt2img") == tmp_path / "outputs" / "txt2img-images"
    assert dirs.folder("img2img-grids") == tmp_path / "outputs" / "img2img-grids"
    assert dirs.folder("save") == tmp_path / "log" / "images"
    common = OutputDirs.from_settings({"outdir_samples": "/abs/all", "outdir_grids": "g",
                                       "outdir_txt2img_samples": "ignored"}, tmp_path)
    assert [common.folder(k) for k in ("txt2img", "img2img", "extras")] == [Path("/abs/all")] * 3
    assert common.folder("txt2img-grids") == common.folder("img2img-grids") == tmp_path / "g"
    assert common.folder("save") == tmp_path / "log" / "images"  # outdir_samples does not take Save
    with pytest.raises(ValueError, match="unknown output kind 'nope'"):
        dirs.folder("nope")


@pytest.mark.parametrize("size, file_bytes, expected", [
    ((64, 64), 1000, None),
    ((64, 64), 5 * 1024 * 1024, (64, 64)),  # over 4 MB: same size, as JPEG
    ((8000, 2000), 1000, (4000, 1000)),  # a side over 4000 px: fitted
    ((3000, 6000), 1000, (2000, 4000)),
])
def test_large_copy_size(size, file_bytes, expected):
    assert large_copy_size(size, file_bytes, SaveOptions()) == expected


def test_tokens_from_an_infotext_name_a_saved_image_like_its_generation():
    from modules.images.filenames import infotext_tokens

    text = "a red cat\nNegative prompt: dog\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 1235, Size: 64x32, Model: tiny"
    t = infotext_tokens(text)
    assert expand_pattern("[seed]-[prompt_words]-[steps]-[width]x[height]-[model_name]", t) == "1235-a red cat-2-64x32-tiny"
    assert infotext_tokens("") == {} and expand_pattern("[seed]", infotext_tokens("")) == ""
