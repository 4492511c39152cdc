"""The demo VAE's colour-path start: flat colours and shape colours get through before any training.

The open problem of the first stage-1 runs was that every background came back as the same orange or
blue (reconstruction MSE 0.36 after 500 steps): a fresh AutoencoderKL's GroupNorms drop flat colours.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tools.demo_model import architecture as arch
from tools.demo_model.dataset import COLOURS, make_dataset
from tools.demo_model.train import to_tensor
from tools.demo_model.vae_init import init_colour_path

SIZES = arch.Sizes(vae_groups=1)  # the shipped VAE's widths


def flat_pictures(side: int = 64) -> torch.Tensor:
    """One picture per named colour, that colour everywhere."""
    rgb = torch.tensor([COLOURS[n] for n in sorted(COLOURS)], dtype=torch.float32).div(127.5).sub(1)
    return rgb[:, :, None, None].expand(-1, -1, side, side).contiguous()


def reconstruction_mse(vae, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(F.mse_loss(vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1), x))


@pytest.fixture(scope="module")
def shapes() -> torch.Tensor:
    return to_tensor(s.image for s in make_dataset(5, 8, 64))


@pytest.fixture(scope="module")
def started(shapes):
    torch.manual_seed(0)
    return init_colour_path(arch.build_vae(SIZES).eval(), to_tensor(s.image for s in make_dataset(4, 16, 64)))


def test_flat_colours_come_back_before_any_training(started):
    assert reconstruction_mse(started, flat_pictures()) < 0.01


def test_a_plain_fresh_vae_does_not_so_the_start_is_what_fixes_it():
    torch.manual_seed(0)
    assert reconstruction_mse(arch.build_vae(SIZES).eval(), flat_pictures()) > 0.1


def test_shape_pictures_start_near_their_8x8_pooled_colours(started, shapes):
    # the best a latent of 8x8 blocks of plain colour can do; training adds the edges on top
    pooled = F.interpolate(F.avg_pool2d(shapes, 8), scale_factor=8)
    floor = float(F.mse_loss(pooled, shapes))
    assert reconstruction_mse(started, shapes) < floor + 0.03
    with torch.no_grad():
        latents = started.encode(shapes).latent_dist.mean
    assert latents.shape[1:] == (4, 8, 8)  # SD 1.x layout: factor 8, 4 channels
    assert (latents[:, :3] - F.avg_pool2d(shapes, 8)).abs().max() < 0.15


def test_the_started_vae_samples_its_mean_not_noise(started, shapes):
    with torch.no_grad():
        posterior = started.encode(shapes).latent_dist
    assert float(posterior.std.max()) < 0.01
