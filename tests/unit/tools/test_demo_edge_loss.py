"""The outline-weighted denoising loss (`--edge-loss-weight`): latent cells on a shape's outline weigh more,
flat cells weigh 1, and the weights reach the loss."""
from __future__ import annotations

import pytest
import torch
from PIL import Image, ImageDraw

from tools.demo_model.train import denoising_loss, edge_weights, to_tensor


def _picture(draw_square: bool) -> Image.Image:
    im = Image.new("RGB", (64, 64), (255, 255, 255))
    if draw_square:
        ImageDraw.Draw(im).rectangle((16, 16, 47, 47), fill=(220, 30, 30))
    return im


def test_a_flat_picture_weighs_one_everywhere_and_an_outline_weighs_more():
    weights = edge_weights(to_tensor([_picture(False), _picture(True)]), 8, 4.0)
    assert weights.shape == (2, 1, 8, 8)
    assert torch.equal(weights[0], torch.ones(1, 8, 8))
    square = weights[1, 0]
    # the square spans cells 2..5: its outline runs through the cells of that ring, not its inside or outside
    assert float(square[2, 3]) > 1.5 and float(square[5, 4]) > 1.5
    assert float(square[3, 3]) == 1.0 and float(square[0, 0]) == 1.0
    assert float(square.max()) <= 5.0


def test_cell_weights_scale_the_loss_where_they_are_set():
    pred, eps = torch.zeros(1, 4, 2, 2), torch.ones(1, 4, 2, 2)
    t = torch.tensor([500])
    cells = torch.tensor([[[[3.0, 1.0], [1.0, 1.0]]]])
    assert float(denoising_loss(pred, eps, t, None, 0.0, cells)) == pytest.approx(6.0 / 4)
    assert float(denoising_loss(pred, eps, t, None, 0.0)) == pytest.approx(1.0)
