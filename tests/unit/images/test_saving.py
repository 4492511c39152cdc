"""Saving images: A1111 folders and names, infotext inside PNG/JPEG/WEBP, counters, atomic writes, grids."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from modules.images.saving import (
    SaveOptions,
    decode_user_comment,
    expand_pattern,
    grid_rows,
    make_grid,
    next_number,
    output_folder,
    read_image_info,
    sanitize_name,
    save_generation,
    save_image,
)
from modules.types import GenerationRequest, GenerationResult

NOW = datetime(2024, 5, 6, 7, 8, 9)
TEXT = (
    'a cat, "quoted": yes\nsecond line\nNegative prompt: dog\n'
    'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 64x64, Lora hashes: "x: 1, y: 2"'
)
UNICODE_TEXT = "猫、桜 — café ☕ 🐈\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 8x8"


def image(color=(200, 30, 30), size=(16, 16), mode="RGB"):
    return Image.new(mode, size, color)


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp"])
@pytest.mark.parametrize("text", [TEXT, UNICODE_TEXT, "latin-1 only: é ü ñ"])
def test_saved_infotext_reads_back_exactly(tmp_path, fmt, text):
    path = save_image(image(), tmp_path, SaveOptions(format=fmt), infotext=text, tokens={"seed": 42}, now=NOW)
    assert path.suffix == {"png": ".png", "jpg": ".jpg", "webp": ".webp"}[fmt]
    with Image.open(path) as img:
        parameters, other = read_image_info(img)
    assert parameters == text
    assert "exif" not in other and "parameters" not in other


def test_png_uses_text_chunk_for_latin1_and_itxt_otherwise(tmp_path):
    plain = save_image(image(), tmp_path, SaveOptions(directory_pattern=""), infotext="café", now=NOW)
    wide = save_image(image(), tmp_path, SaveOptions(directory_pattern=""), infotext=UNICODE_TEXT, now=NOW)
    assert b"tEXtparameters" in plain.read_bytes() and b"iTXt" not in plain.read_bytes()
    assert b"iTXtparameters" in wide.read_bytes()


def test_png_extra_items_come_back_as_other_items(tmp_path):
    path = save_image(
        image(), tmp_path, infotext=TEXT, extra_info={"postprocessing": "Postprocess upscaler: x"}
    )
    with Image.open(path) as img:
        assert read_image_info(img) == (TEXT, {"postprocessing": "Postprocess upscaler: x"})


def test_jpeg_exif_is_a1111_style_unicode_user_comment(tmp_path):
    path = save_image(image(), tmp_path, SaveOptions(format="jpg"), infotext="hi", now=NOW)
    with Image.open(path) as img:
        exif = img.getexif()
        assert exif.endian == ">"
        assert exif.get_ifd(0x8769)[0x9286] == b"UNICODE\x00" + "hi".encode("utf-16-be")


def test_user_comment_decoding_variants():
    assert decode_user_comment(b"UNICODE\x00" + "abc".encode("utf-16-le")) == "abc"
    assert decode_user_comment(b"UNICODE\x00" + "abc".encode("utf-16")) == "abc"
    assert decode_user_comment(b"ASCII\x00\x00\x00abc\x00") == "abc"
    assert decode_user_comment(b"\x00" * 8 + "é".encode()) == "é"
    assert decode_user_comment(b"no prefix") == "no prefix"


def test_image_without_info(tmp_path):
    assert read_image_info(image()) == (None, {})
    path = tmp_path / "x.jpg"
    image().save(path)
    with Image.open(path) as img:
        assert read_image_info(img) == (None, {})


def test_a1111_folder_and_file_names(tmp_path):
    folder = output_folder(tmp_path / "outputs", "txt2img")
    paths = [save_image(image(), folder, tokens={"seed": s}, now=NOW) for s in (42, 43, 44)]
    day = tmp_path / "outputs" / "txt2img-images" / "2024-05-06"
    assert [p.parent for p in paths] == [day] * 3
    assert files(day) == ["00000-42.png", "00001-43.png", "00002-44.png"]
    assert output_folder("o", "img2img-grids") == Path("o/img2img-grids")
    with pytest.raises(ValueError, match="unknown output kind"):
        output_folder("o", "nope")


def test_counter_continues_after_existing_files_and_never_overwrites(tmp_path):
    (tmp_path / "00041-7.png").write_bytes(b"old")
    (tmp_path / "00007.txt").write_text("x")
    (tmp_path / "notes-99.txt").write_text("x")
    options = SaveOptions(directory_pattern="", filename_pattern="same")
    assert next_number(tmp_path) == 42
    first = save_image(image(), tmp_path, options)
    second = save_image(image(), tmp_path, options)
    assert (first.name, second.name) == ("00042-same.png", "00043-same.png")
    assert (tmp_path / "00041-7.png").read_bytes() == b"old"
    unnumbered = SaveOptions(directory_pattern="", filename_pattern="same", add_number=False)
    names = [save_image(image(), tmp_path, unnumbered).name for _ in range(3)]
    assert names == ["same.png", "same-1.png", "same-2.png"]


def test_name_taken_by_another_saver_moves_on(tmp_path, monkeypatch):
    """Another process claims the number between our scan and our link: we take the next one."""
    real_link = os.link
    raced = []

    def racing_link(src, dst):
        if not raced:
            raced.append(dst)
            Path(dst).write_bytes(b"theirs")
        return real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    path = save_image(image(), tmp_path, SaveOptions(directory_pattern=""), tokens={"seed": 1})
    assert Path(raced[0]).name == "00000-1.png" and Path(raced[0]).read_bytes() == b"theirs"
    assert path.name == "00001-1.png"


def test_grid_names_and_counter(tmp_path):
    options = SaveOptions(directory_pattern="", filename_pattern="")
    names = [save_image(image(), tmp_path, options, basename="grid").name for _ in range(2)]
    assert names == ["grid-0000.png", "grid-0001.png"]


def test_no_temp_files_left_on_success_or_failure(tmp_path, monkeypatch):
    save_image(image(), tmp_path, SaveOptions(save_txt=True), infotext=TEXT, now=NOW)
    day = tmp_path / "2024-05-06"
    assert files(day) == ["00000.png", "00000.txt"]
    assert (day / "00000.txt").read_text(encoding="utf-8") == TEXT

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(os, "link", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        save_image(image(), tmp_path, now=NOW)
    assert files(day) == ["00000.png", "00000.txt"]


def test_no_hard_links_falls_back_to_rename(tmp_path, monkeypatch):
    def unsupported(*args, **kwargs):
        raise PermissionError("no links here")

    monkeypatch.setattr(os, "link", unsupported)
    paths = [
        save_image(image(), tmp_path, SaveOptions(directory_pattern=""), tokens={"seed": 5}) for _ in "ab"
    ]
    assert [p.name for p in paths] == ["00000-5.png", "00001-5.png"]
    assert files(tmp_path) == ["00000-5.png", "00001-5.png"]


def test_jpeg_too_long_for_exif_gets_a_sidecar(tmp_path):
    text = "x" * 40_000  # UTF-16 doubles it past JPEG's 64 KiB EXIF segment
    path = save_image(image(), tmp_path, SaveOptions(format="jpg", directory_pattern=""), infotext=text)
    assert path.with_suffix(".txt").read_text(encoding="utf-8") == text
    with Image.open(path) as img:
        assert read_image_info(img)[0] is None


def test_modes_are_converted_where_the_format_needs_it(tmp_path):
    for fmt in ("jpg", "webp", "png"):
        for mode in ("RGBA", "P", "L"):
            src = image(mode=mode, color=0 if mode != "RGBA" else (1, 2, 3, 128))
            path = save_image(src, tmp_path, SaveOptions(format=fmt, directory_pattern=""), infotext="t")
            with Image.open(path) as img:
                assert img.size == (16, 16) and read_image_info(img)[0] == "t"


def test_pattern_tokens_are_sanitised(tmp_path):
    tokens = {
        "seed": 7,
        "prompt": 'a/cat: (on) a <mat>, by "someone"?\nnew line',
        "model_name": "v1:5",
        "steps": 20,
        "sampler": "DPM++ 2M",
        "cfg": 7.0,
    }
    pattern = "[seed]-[prompt_words]-[model_name]-[date]-[steps]-[sampler]-[cfg]-[unknown]"
    assert expand_pattern(pattern, tokens, now=NOW) == (
        "7-a cat on a mat by someone new-v15-2024-05-06-20-DPM++ 2M-7-[unknown]"
    )
    assert expand_pattern("[prompt_words]", {"prompt": "(( ))"}) == "empty"
    assert expand_pattern("[prompt]", {"prompt": "x/" * 200}) == "x" * 64  # cut at 128 characters first
    assert expand_pattern("[seed]-[model_name]", {}) == "-"
    path = save_image(image(), tmp_path, SaveOptions(filename_pattern=pattern), tokens=tokens, now=NOW)
    assert path.parent == tmp_path / "2024-05-06" and path.name.startswith("00000-7-a cat on a mat")


def test_sanitize_name_limits():
    assert sanitize_name(' ..a<b>:c"d/e\\f|g?h*i#j\tk. . ') == "..abcdefghijk"
    assert len(sanitize_name("猫" * 100, max_bytes=200).encode()) <= 200
    assert sanitize_name("猫" * 100, max_bytes=200) == "猫" * 66
    assert sanitize_name("con") == "_con" and sanitize_name("Lpt1.txt") == "_Lpt1.txt"


def test_options_from_a1111_settings():
    options = SaveOptions.from_settings(
        {"samples_format": "JPG", "samples_filename_pattern": "", "jpeg_quality": 95, "save_txt": True}
    )
    assert options == SaveOptions(format="jpg", filename_pattern="[seed]", jpeg_quality=95, save_txt=True)
    assert SaveOptions.from_settings({"save_to_dirs": False}).directory_pattern == ""
    with pytest.raises(ValueError, match="unknown image format"):
        save_image(image(), ".", SaveOptions(format="gif"))


def test_save_generation_writes_images_and_grid(tmp_path):
    images = [image((i * 40, 0, 0)) for i in range(4)]
    result = GenerationResult(
        images=images,
        all_seeds=[10, 11, 12, 13],
        all_prompts=["p"] * 4,
        infotexts=[f"p\nSteps: 1, Seed: {s}, Size: 16x16" for s in range(10, 14)],
        grid=make_grid(images),
    )
    request = GenerationRequest(prompt="p", mode="img2img")
    paths = save_generation(result, request, tmp_path, now=NOW)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "img2img-images/2024-05-06/00000-10.png",
        "img2img-images/2024-05-06/00001-11.png",
        "img2img-images/2024-05-06/00002-12.png",
        "img2img-images/2024-05-06/00003-13.png",
        "img2img-grids/2024-05-06/grid-0000.png",
    ]
    with Image.open(paths[2]) as img:
        assert read_image_info(img)[0] == result.infotexts[2]
    assert len(save_generation(result, request.with_changes(do_not_save_grid=True), tmp_path, now=NOW)) == 4


@pytest.mark.parametrize(
    "count, rows, cols",
    [
        (1, 1, 1),
        (2, 1, 2),
        (3, 2, 2),
        (4, 2, 2),
        (5, 2, 3),
        (6, 2, 3),
        (7, 3, 3),
        (9, 3, 3),
        (12, 3, 4),
        (16, 4, 4),
    ],
)
def test_grid_automatic_rows(count, rows, cols):
    grid = make_grid([image(size=(8, 6))] * count)
    assert grid.size == (cols * 8, rows * 6) and grid.mode == "RGB"


def test_grid_rows_options():
    assert grid_rows(6, 3) == 3 and grid_rows(4, 10) == 4
    assert grid_rows(8, 0, batch_size=2) == 2
    assert grid_rows(7, prevent_empty_spots=True) == 1 and grid_rows(8, prevent_empty_spots=True) == 2
    with pytest.raises(ValueError):
        grid_rows(0)
    grid = make_grid([image((255, 0, 0)), image((0, 255, 0)), image((0, 0, 255))], rows=1)
    assert grid.size == (48, 16)
    assert [grid.getpixel((x, 0)) for x in (0, 16, 32)] == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    assert make_grid([image()] * 3).getpixel((20, 20)) == (0, 0, 0)  # the empty spot stays black


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saved_files_get_ordinary_permissions(tmp_path):
    path = save_image(image(), tmp_path, SaveOptions(directory_pattern="", save_txt=True), infotext="t")
    reference = tmp_path / "reference"
    reference.write_bytes(b"")
    assert path.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777
    assert path.with_suffix(".txt").stat().st_mode & 0o777 == reference.stat().st_mode & 0o777
