"""evaluate.py's measures on pictures whose truth we know: the dataset's own renders."""
from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from tools.demo_model.dataset import COLOURS, ShapeRecord, render
from tools.demo_model.evaluate import background_colour, colour_fractions, largest_blob, red_share, roundness


def one_shape(shape: str, colour: str = "red", background: str = "white", side: int = 128) -> Image.Image:
    record = ShapeRecord(shape, colour, "large", "centre", side / 2, side / 2, side * 0.3)
    return render(background, (record,), side)


@pytest.mark.parametrize("side", [64, 128])
def test_roundness_puts_circle_over_square_over_triangle_and_star(side):
    r = {s: roundness(largest_blob(one_shape(s, side=side)))
         for s in ("circle", "square", "triangle", "star")}
    assert r["circle"] > 0.9 and 0.55 < r["square"] < 0.72
    # a five-point star with inner radius 0.45 fills its circle about as much as a triangle does
    assert r["square"] > max(r["triangle"], r["star"]) and max(r["triangle"], r["star"]) < 0.5


def test_colour_fractions_background_and_red_share_of_a_render():
    image = one_shape("circle", "red", "white")
    fractions = colour_fractions(image)
    assert abs(sum(fractions.values()) - 1) < 1e-6
    assert fractions["red"] == pytest.approx(3.14159 * 0.3**2, abs=0.02)  # the disc's share of the picture
    assert background_colour(image) == "white"
    assert red_share(image) == 1.0 and red_share(one_shape("square", "blue", "black")) == 0.0
    assert background_colour(one_shape("star", "yellow", "purple")) == "purple"


def test_the_largest_blob_is_the_bigger_shape_and_ignores_the_background():
    image = Image.new("RGB", (64, 64), COLOURS["green"])
    draw = ImageDraw.Draw(image)
    draw.rectangle((2, 2, 10, 10), fill=COLOURS["red"])
    draw.ellipse((30, 30, 60, 60), fill=COLOURS["blue"])
    mask = largest_blob(image)
    assert mask[45, 45] and not mask[5, 5] and not mask[0, 63]


def test_redness_orders_red_over_a_mix_over_blue_and_ignores_the_background():
    from tools.demo_model.evaluate import redness

    red, blue = one_shape("circle", "red", "white"), one_shape("circle", "blue", "white")
    mix = Image.new("RGB", (128, 128), COLOURS["white"])
    draw = ImageDraw.Draw(mix)
    draw.rectangle((10, 40, 60, 90), fill=COLOURS["red"])
    draw.rectangle((70, 40, 100, 90), fill=COLOURS["blue"])  # less blue than red: leans red
    assert redness(red) == pytest.approx((220 - 30) / 255, abs=0.02)  # the background adds nothing
    assert redness(blue) == pytest.approx((30 - 225) / 255, abs=0.02)
    assert redness(blue) < 0 < redness(mix) < redness(red)
    # two all-red pictures tie on the pixel-count share, the continuous measure still tells them apart
    assert red_share(red) == red_share(mix.crop((0, 0, 64, 128))) == 1.0
    assert redness(Image.new("RGB", (32, 32), COLOURS["green"])) == 0.0  # nothing but background
