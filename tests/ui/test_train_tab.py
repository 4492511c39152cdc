"""The Train tab in a real browser (one server): caption a folder with the tiny WD14 tagger, open the tag
editor, replace a tag, save, and the files on disk match; undo puts them back; preprocess (focal crop, flip,
WD14 captions) then edit the tags of the result; img2img's Interrogate fills the prompt with the chosen
tagger."""
from __future__ import annotations

import pytest
from PIL import Image

from tests.helpers.browser import screenshot
from tests.ui.conftest import (
    choose,
    on_the_shared_server,
    open_subtab,
    open_tab,
    set_number,
    set_text,
    text_value,
)

pytestmark = [pytest.mark.browser, pytest.mark.server]


# The shared server's data dir has the tiny tagger and the datasets `set` (red, blue, red2: 64x64) and `raw`
# (a wide red and a tall blue image), written there before it starts (tests/ui/conftest.py).
data_dir, server = on_the_shared_server()


def wait_text(page, selector: str, text: str, timeout: float = 30_000) -> str:
    page.wait_for_function("([sel, text]) => (document.querySelector(sel)?.innerText || '').includes(text)",
                           arg=[selector, text], timeout=timeout)
    return page.inner_text(selector)


def test_caption_then_edit_tags(page, data_dir):
    dataset = data_dir / "datasets" / "set"
    open_tab(page, "train")
    open_subtab(page, "train_caption_tab")
    set_text(page, "caption_dir", "datasets/set")
    page.fill("#caption_general_threshold input[type=number]", "0.55")
    page.press("#caption_general_threshold input[type=number]", "Enter")
    set_text(page, "caption_exclude", "solo")
    page.click("#caption_run")
    wait_text(page, "#caption_result", "3 caption(s) written")
    assert (dataset / "red.txt").read_text() == "red theme, hatsune miku, 1girl"
    assert (dataset / "blue.txt").read_text() == "blue sky, hatsune miku, 1girl"
    before = {p.name: p.read_bytes() for p in dataset.glob("*.txt")}

    open_subtab(page, "train_tag_editor_tab")
    set_text(page, "tag_editor_dir", "datasets/set")
    page.click("#tag_editor_load")
    wait_text(page, "#tag_editor_status", "3 image(s), 4 tag(s)")
    assert "hatsune miku" in page.inner_text("#tag_editor_frequencies")
    set_text(page, "tag_editor_tags", "hatsune miku")
    set_text(page, "tag_editor_replace_with", "miku")
    page.click("#tag_editor_apply")
    wait_text(page, "#tag_editor_status", "3 unsaved change(s)")
    assert (dataset / "red.txt").read_bytes() == before["red.txt"]  # nothing written before Save
    page.click("#tag_editor_save")
    wait_text(page, "#tag_editor_status", "Saved 3 caption(s)")
    assert (dataset / "red.txt").read_text() == "red theme, miku, 1girl"
    assert (dataset / "red2.txt").read_text() == "red theme, miku, 1girl"
    assert (dataset / "blue.txt").read_text() == "blue sky, miku, 1girl"
    screenshot(page, "train_tag_editor")
    page.click("#tag_editor_undo")
    wait_text(page, "#tag_editor_status", "Restored 3 caption(s)")
    assert {p.name: p.read_bytes() for p in dataset.glob("*.txt")} == before

    # per image: pick the first picture (blue.png), change its tags, save
    page.locator("#tag_editor_gallery .thumbnail-item").first.click()
    page.wait_for_function(
        "() => document.querySelector('#tag_editor_image input, #tag_editor_image textarea')"
        ".value === 'blue.png'",
        timeout=30_000)
    assert text_value(page, "tag_editor_image_tags") == "blue sky, hatsune miku, 1girl"
    set_text(page, "tag_editor_image_tags", "blue sky, sea")
    page.click("#tag_editor_set")
    wait_text(page, "#tag_editor_status", "1 unsaved change(s)")
    page.click("#tag_editor_save")
    wait_text(page, "#tag_editor_status", "Saved 1 caption(s)")
    assert (dataset / "blue.txt").read_text() == "blue sky, sea"
    assert (dataset / "red.txt").read_bytes() == before["red.txt"]


def test_preprocess_with_captions_then_edit_tags(page, data_dir):
    out = data_dir / "datasets" / "pre"
    open_tab(page, "train")
    open_subtab(page, "train_preprocess_tab")
    set_text(page, "preprocess_src", "datasets/raw")
    set_text(page, "preprocess_dst", "datasets/pre")
    set_number(page, "preprocess_width", 64)
    set_number(page, "preprocess_height", 64)
    page.check("#preprocess_flip input[type=checkbox]")
    choose(page, "preprocess_tagger", "tiny-wd14")
    page.click("#preprocess_run")
    wait_text(page, "#preprocess_status", "2 of 2 files processed", timeout=60_000)
    images = sorted(p for p in out.rglob("*.png"))
    assert len(images) == 4  # two crops and their flipped copies
    captions = {p.name: p.with_suffix(".txt").read_text() for p in images}
    tail = r"hatsune miku, 1girl, solo, ^_^, star \(symbol\)"
    assert sorted(captions.values()) == sorted([f"blue sky, {tail}"] * 2 + [f"red theme, {tail}"] * 2)
    assert all(Image.open(p).size == (64, 64) for p in images)

    open_subtab(page, "train_tag_editor_tab")
    set_text(page, "tag_editor_dir", str(images[0].parent))
    page.click("#tag_editor_load")
    wait_text(page, "#tag_editor_status", "4 image(s)")
    set_text(page, "tag_editor_tags", "solo")
    set_text(page, "tag_editor_replace_with", "alone")
    page.click("#tag_editor_apply")
    wait_text(page, "#tag_editor_status", "4 unsaved change(s)")
    page.click("#tag_editor_save")
    wait_text(page, "#tag_editor_status", "Saved 4 caption(s)")
    assert {p.name: p.with_suffix(".txt").read_text() for p in images} == \
        {name: text.replace("solo", "alone") for name, text in captions.items()}


def test_img2img_interrogate_fills_the_prompt(page, data_dir):
    open_tab(page, "img2img")
    open_subtab(page, "img2img_img2img_tab")
    page.set_input_files("#img2img_image input[type=file]", str(data_dir / "datasets" / "set" / "blue.png"))
    page.wait_for_selector("#img2img_image img")
    page.click("#img2img_interrogate_tagger")
    page.wait_for_function(
        "() => document.querySelector('#img2img_prompt textarea').value.includes('blue sky')", timeout=30_000)
    assert text_value(page, "img2img_prompt") == r"blue sky, hatsune miku, 1girl, solo, ^_^, star \(symbol\)"
    page.click("#deepbooru")
    wait_text(page, "#img2img_interrogate_message", "model-resnet_custom_v3.pt")
    assert text_value(page, "img2img_prompt").startswith("blue sky")  # kept when the tagger cannot run
