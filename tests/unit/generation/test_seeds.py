"""A1111 seed semantics on the noise itself: per-image generators, variation slerp, seed resize, ENSD."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from modules.generation.seeds import (
    MAX_SEED,
    create_latents,
    create_noise,
    job_seeds,
    place_resized,
    resolve_seed,
    slerp,
    step_generators,
)
from modules.rng.image_rng import ImageRNG
from modules.rng.philox import PhiloxGenerator
from modules.rng.sources import RngConfig
from modules.types import UserInputError

SHAPE = (4, 8, 12)


def cpu_randn(seed, shape=SHAPE):
    return torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))


def test_minus_one_is_a_random_32_bit_seed_and_others_are_kept():
    drawn = {resolve_seed(-1) for _ in range(5)}
    assert all(0 <= s <= MAX_SEED for s in drawn) and len(drawn) > 1
    assert resolve_seed(1234) == 1234


def test_image_i_of_a_job_gets_seed_plus_i():
    assert job_seeds(100, 4) == [100, 101, 102, 103]
    first, *rest = job_seeds(-1, 3)
    assert rest == [first + 1, first + 2]


def test_noise_is_the_cpu_generator_of_the_seed_and_a_batch_equals_single_images():
    expected = cpu_randn(7)
    assert torch.equal(create_noise(7, None, 0.0, SHAPE), expected)
    batch = create_latents([7, 8], None, 0.0, SHAPE)
    assert batch.shape == (2, *SHAPE)
    assert torch.equal(batch[0], expected)
    assert torch.equal(batch[1], create_noise(8, None, 0.0, SHAPE))


@pytest.mark.parametrize("source", ["GPU", "CPU", "NV"])
def test_every_source_keeps_batch_equal_to_singles_for_first_and_step_noise(source):
    config = RngConfig(source, ensd=0)
    batch = ImageRNG(config, [3, 4, 5], [9, 10, 11], 0.3)
    draws = [batch.draw(SHAPE) for _ in range(3)]
    for i, seed in enumerate([3, 4, 5]):
        alone = ImageRNG(config, [seed], [9 + i], 0.3)
        for draw in draws:
            assert torch.equal(draw[i], alone.draw(SHAPE)[0])


def test_gpu_on_a_cpu_machine_is_the_cpu_source_and_nv_is_philox():
    assert torch.equal(create_noise(7, None, 0.0, SHAPE, config=RngConfig("GPU")), cpu_randn(7))
    nv = create_noise(7, None, 0.0, SHAPE, config=RngConfig("NV"))
    assert np.array_equal(nv.numpy(), PhiloxGenerator(7).randn(SHAPE))
    # MPS has no generator A1111 uses: "GPU" there draws on the CPU (checked without an MPS device)
    assert RngConfig("GPU", device="mps").torch_device.type == "cpu"
    assert RngConfig("CPU", device="cuda").torch_device.type == "cpu"
    assert RngConfig("GPU", device="cuda").torch_device.type == "cuda"
    with pytest.raises(UserInputError, match="randn_source"):
        RngConfig("AMD")


@pytest.mark.parametrize("source", ["CPU", "NV"])
def test_a_seed_past_64_bits_is_its_low_64_bits_and_seeds_torch_took_keep_their_noise(source):
    # torch refused 2**64 and up ("Overflow when unpacking long long"): a pasted seed of 2**70, or seed + i of
    # a batch that starts at 2**64 - 1, failed the job with a server error.
    config = RngConfig(source)
    for seed in (2**70 + 9, 2**64):
        assert torch.equal(create_noise(seed, None, 0.0, SHAPE, config=config),
                           create_noise(seed % 2**64, None, 0.0, SHAPE, config=config))
    if source == "CPU":  # a negative seed is what torch made of it, as before
        for seed in (-5, -(2**63), 2**64 - 1):
            assert torch.equal(create_noise(seed, None, 0.0, SHAPE, config=config), cpu_randn(seed))


def test_step_noise_continues_the_seed_stream_and_ensd_reseeds_it():
    rng = ImageRNG(RngConfig("CPU"), [9])
    rng.draw(SHAPE)
    reference = torch.Generator("cpu").manual_seed(9)
    torch.randn(SHAPE, generator=reference)
    assert torch.equal(rng.draw(SHAPE)[0], torch.randn(SHAPE, generator=reference))
    later = torch.Generator("cpu").manual_seed(9)
    torch.randn(SHAPE, generator=later)
    continued = step_generators([9], SHAPE)[0]
    assert torch.equal(torch.randn(3, generator=continued), torch.randn(3, generator=later))
    # ENSD 31337: the first noise is still the seed's, the step noise is seed + 31337's from its start
    ensd = ImageRNG(RngConfig("CPU", ensd=31337), [9])
    assert torch.equal(ensd.draw(SHAPE)[0], cpu_randn(9))
    assert torch.equal(ensd.draw(SHAPE)[0], cpu_randn(9 + 31337))
    nv = ImageRNG(RngConfig("NV", ensd=5), [9])
    nv.draw(SHAPE)
    assert np.array_equal(nv.draw(SHAPE)[0].numpy(), PhiloxGenerator(14).randn(SHAPE))


def test_variation_strength_zero_is_no_variation_and_one_is_the_subseed():
    for source in ("CPU", "NV"):
        config = RngConfig(source)
        assert torch.equal(create_noise(1, 2, 0.0, SHAPE, config=config), create_noise(1, None, 0.0, SHAPE,
                                                                                         config=config))
        assert torch.equal(create_noise(1, 2, 1.0, SHAPE, config=config), create_noise(2, None, 0.0, SHAPE,
                                                                                         config=config))
    half = create_noise(1, 2, 0.5, SHAPE)
    assert not torch.equal(half, create_noise(1, None, 0.0, SHAPE))
    # slerp keeps the noise at unit variance, where a plain average would shrink it to ~0.71
    assert 0.8 < half.std().item() < 1.2


def test_slerp_is_per_channel_and_column_as_a1111():
    low, high = cpu_randn(1), cpu_randn(2)
    out = slerp(0.3, low, high)
    # one column (channel 1, x 5) by hand: the angle between the two columns along H
    a, b = low[1, :, 5].double(), high[1, :, 5].double()
    omega = torch.acos((a / a.norm()) @ (b / b.norm()))
    expected = (torch.sin(0.7 * omega) * a + torch.sin(0.3 * omega) * b) / torch.sin(omega)
    assert torch.allclose(out[1, :, 5].double(), expected, atol=1e-5)
    assert torch.allclose(slerp(0.5, low, low), low)  # parallel: falls back to linear


def test_seed_resize_places_the_old_size_noise_in_the_centre():
    old = create_noise(5, None, 0.0, (4, 4, 6))
    resized = create_noise(5, None, 0.0, SHAPE, resize_from=(6 * 8, 4 * 8))
    assert resized.shape == SHAPE
    assert torch.equal(resized[:, 2:6, 3:9], old)
    # outside the centre: the seed's own noise at the new size
    full = create_noise(5, None, 0.0, SHAPE)
    assert torch.equal(resized[:, :2], full[:, :2])
    # a larger "from" size is cropped around its centre
    big = create_noise(5, None, 0.0, (4, 12, 16))
    shrunk = create_noise(5, None, 0.0, SHAPE, resize_from=(16 * 8, 12 * 8))
    assert torch.equal(shrunk, big[:, 2:10, 2:14])


def test_resize_offsets_floor_odd_differences_as_a1111():
    # 5 columns into 4: A1111's dx = (4 - 5) // 2 = -1 copies 5 - 2 = 3 columns from x=1 to x=0..2; the
    # fourth column keeps the background.
    small = torch.arange(2 * 5, dtype=torch.float32).reshape(1, 2, 5)
    out = place_resized(small, torch.full((1, 4, 4), -1.0))
    assert torch.equal(out[:, 1:3, 0:3], small[:, :, 1:4])
    assert (out[:, :, 3] == -1).all() and (out[:, 0] == -1).all()
