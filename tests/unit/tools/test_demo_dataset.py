"""The demo model's procedural dataset: same seed same pictures, captions that say what is drawn, the mix."""
from __future__ import annotations

import json
import math
import re
from collections import Counter

import numpy as np
import pytest

from tools.demo_model.dataset import (
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    make_dataset,
    make_sample,
    shape_twin,
    write_dataset,
)


@pytest.fixture(scope="module")
def samples():
    return make_dataset(seed=3, count=400, side=64)


def test_the_same_seed_gives_the_same_pixels_and_captions_and_another_seed_does_not():
    first, again = make_dataset(7, 20, 128), make_dataset(7, 20, 128)
    for a, b in zip(first, again, strict=True):
        assert a.caption == b.caption and a.record() == b.record()
        assert a.image.tobytes() == b.image.tobytes()
    other = make_dataset(8, 20, 128)
    assert [s.caption for s in other] != [s.caption for s in first]
    # sample i is its own stream: it does not depend on how many samples were made before it
    assert make_sample(7, 13, 128).image.tobytes() == first[13].image.tobytes()


def test_the_stream_is_pinned_so_every_machine_draws_the_same_dataset():
    # Python's Mersenne Twister is specified to be the same everywhere: these must never change silently
    assert [make_sample(0, i).caption for i in range(3)] == [
        "blue square, right, green square, bottom, white background",
        "a small purple circle and a small white star on a green background",
        "a red square on the left on a black background",
    ]


def test_64_and_128_pixels_show_the_same_scene_with_the_same_caption():
    small, large = make_sample(5, 2, 64), make_sample(5, 2, 128)
    assert small.caption == large.caption and small.background == large.background
    assert small.image.size == (64, 64) and large.image.size == (128, 128)
    for s, t in zip(small.shapes, large.shapes, strict=True):
        assert (s.shape, s.colour, s.position) == (t.shape, t.colour, t.position)
        assert math.isclose(t.cx, 2 * s.cx) and math.isclose(t.radius, 2 * s.radius)


def test_each_shape_centre_has_its_captioned_colour_and_the_free_area_the_background(samples):
    for sample in samples:
        pixels = np.asarray(sample.image, dtype=np.int16)
        for shape in sample.shapes:
            centre = pixels[round(shape.cy), round(shape.cx)]
            assert np.abs(centre - COLOURS[shape.colour]).max() <= 2, (sample.index, shape)
        yy, xx = np.mgrid[0:64, 0:64]
        free = np.ones((64, 64), bool)
        for shape in sample.shapes:  # outside every circumcircle (plus a pixel of edge blur) is background
            free &= np.hypot(xx - shape.cx, yy - shape.cy) > shape.radius + 1.5
        assert free.any()
        assert np.abs(pixels[free] - COLOURS[sample.background]).max() <= 2, sample.index


def test_captions_name_exactly_the_drawn_colours_shapes_and_background(samples):
    for sample in samples:
        words = sample.caption.replace(",", " ").split()
        assert not re.search(r"\ba [aeiou]", sample.caption), sample.caption  # "an orange", not "a orange"
        for shape in sample.shapes:
            assert f"{shape.colour} {shape.shape}" in sample.caption, sample.caption
        named_shapes = Counter(w for w in words if w in SHAPES)
        assert named_shapes == Counter(s.shape for s in sample.shapes), sample.caption
        assert sample.background not in [s.colour for s in sample.shapes]
        background = [w for w, nxt in zip(words, words[1:], strict=False) if nxt == "background"]
        assert background in ([], [sample.background]), sample.caption
        for word in words:  # sizes and positions, when said, are the drawn ones
            if word in SIZES:
                assert word in [s.size for s in sample.shapes], sample.caption
        if sample.style == "tags":
            for word in (w.strip() for w in sample.caption.split(",")):
                if word in POSITIONS:
                    assert word in [s.position for s in sample.shapes], sample.caption


def test_the_mix_covers_every_attribute_and_both_caption_styles(samples):
    assert len(samples) == 400 and [s.index for s in samples] == list(range(400))
    counts = Counter(len(s.shapes) for s in samples)
    assert set(counts) == {1, 2, 3} and counts[1] > counts[2] > counts[3]
    drawn = [shape for s in samples for shape in s.shapes]
    assert {s.shape for s in drawn} == set(SHAPES)
    assert {s.colour for s in drawn} == set(COLOURS)
    assert {s.background for s in samples} == set(COLOURS)
    assert {s.size for s in drawn} == set(SIZES) and {s.position for s in drawn} == set(POSITIONS)
    styles = Counter(s.style for s in samples)
    assert 0.2 < styles["tags"] / len(samples) < 0.4
    # several shapes in one picture never share a position
    assert all(len({s.position for s in x.shapes}) == len(x.shapes) for x in samples)
    # "a red circle" alone (no size, no position) is in the data: what a newcomer types
    assert any(s.caption.startswith(f"a {s.shapes[0].colour} {s.shapes[0].shape}") for s in samples)


def test_write_dataset_writes_the_pngs_and_one_metadata_line_each(tmp_path):
    out = write_dataset(tmp_path / "shapes", seed=1, count=5, side=64)
    lines = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [line["file_name"] for line in lines] == [f"{i:06d}.png" for i in range(5)]
    assert lines[2]["caption"] == make_sample(1, 2, 64).caption
    assert all((out / line["file_name"]).is_file() for line in lines)


def test_partial_captions_name_one_drawn_shape_of_a_several_shape_scene(samples):
    import random

    from tools.demo_model.dataset import partial_caption

    several = [s for s in samples if len(s.shapes) >= 2]
    named = Counter()
    for sample in samples:
        text = partial_caption(sample, random.Random(sample.index))
        if len(sample.shapes) == 1:
            assert text is None
            continue
        phrases = [f"{s.colour} {s.shape}" for s in sample.shapes]
        said = [p for p in phrases if p in text]
        assert len(set(said)) == 1, (text, sample.shapes)  # one shape (or twins), the others left unsaid
        assert sum(text.count(shape) for shape in SHAPES) == 1, text
        assert "background" not in text, text  # a caption naming the background stays a whole description
        named[phrases.index(said[0])] += 1
    # any shape of the scene may be the named one, not only the first drawn
    assert len(several) > 100 and set(named) >= {0, 1} and min(named[0], named[1]) > 0.3 * len(several) / 3


def test_a_shape_twin_is_the_same_scene_with_another_shape_and_only_that_word_changed():
    singles = [s for s in make_dataset(7, 60, 64) if len(s.shapes) == 1]
    several = next(s for s in make_dataset(7, 60, 64) if len(s.shapes) > 1)
    assert shape_twin(several) is None
    seen = set()
    for sample in singles:
        twin = shape_twin(sample)
        [a], [b] = sample.shapes, twin.shapes
        assert b.shape != a.shape and b.shape in SHAPES
        assert (b.colour, b.size, b.position, b.cx, b.cy, b.radius) == (a.colour, a.size, a.position, a.cx,
                                                                      a.cy, a.radius)
        assert twin.background == sample.background and twin.image.size == sample.image.size
        words = sample.caption.split()
        assert sum(w.rstrip(",") == a.shape for w in words) == 1, sample.caption
        assert twin.caption.split() == [w.replace(a.shape, b.shape) if w.rstrip(",") == a.shape else w
                                        for w in words]
        pixels = np.asarray(sample.image, dtype=np.int16) - np.asarray(twin.image, dtype=np.int16)
        # the outline moved: some pixels went all the way from shape colour to background or back
        full = np.abs(np.subtract(COLOURS[a.colour], COLOURS[sample.background])).max()
        assert (np.abs(pixels).max(axis=-1) == full).sum() >= 10
        # the background far from the shape is untouched
        corner = (0, 0) if a.cx > 20 and a.cy > 20 else (63, 63)
        assert (pixels[corner[1], corner[0]] == 0).all()
        seen.add((a.shape, b.shape))
    assert len(seen) >= 8, f"pairs of shapes seen: {sorted(seen)}"
