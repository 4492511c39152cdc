"""A1111 seed semantics on the noise itself: per-image generators, variation slerp, seed resize."""
from __future__ import annotations

import torch

from modules.generation.seeds import (
    MAX_SEED,
    create_latents,
    create_noise,
    job_seeds,
    place_centred,
    resolve_seed,
    slerp,
    step_generators,
)

SHAPE = (4, 8, 12)


def test_minus_one_is_a_random_32_bit_seed_and_others_are_kept():
    drawn = {resolve_seed(-1) for _ in range(5)}
    assert all(0 <= s <= MAX_SEED for s in drawn) and len(drawn) > 1
    assert resolve_seed(1234) == 1234


def test_image_i_of_a_job_gets_seed_plus_i():
    assert job_seeds(100, 4) == [100, 101, 102, 103]
    first, *rest = job_seeds(-1, 3)
    assert rest == [first + 1, first + 2]


def test_noise_is_the_cpu_generator_of_the_seed_and_a_batch_equals_single_images():
    expected = torch.randn(SHAPE, generator=torch.Generator("cpu").manual_seed(7))
    assert torch.equal(create_noise(7, None, 0.0, SHAPE), expected)
    batch = create_latents([7, 8], None, 0.0, SHAPE)
    assert batch.shape == (2, *SHAPE)
    assert torch.equal(batch[0], expected)
    assert torch.equal(batch[1], create_noise(8, None, 0.0, SHAPE))


def test_variation_strength_zero_is_no_variation_and_one_is_the_subseed():
    assert torch.equal(create_noise(1, 2, 0.0, SHAPE), create_noise(1, None, 0.0, SHAPE))
    assert torch.equal(create_noise(1, 2, 1.0, SHAPE), create_noise(2, None, 0.0, SHAPE))
    half = create_noise(1, 2, 0.5, SHAPE)
    assert not torch.equal(half, create_noise(1, None, 0.0, SHAPE))
    # slerp keeps the noise at unit variance, where a plain average would shrink it to ~0.71
    assert 0.8 < half.std().item() < 1.2


def test_slerp_endpoints_and_parallel_inputs():
    a, b = torch.randn(10), torch.randn(10)
    assert torch.equal(slerp(0.0, a, b), a) and torch.equal(slerp(1.0, a, b), b)
    assert torch.allclose(slerp(0.5, a, 2 * a), 1.5 * a)  # parallel: falls back to linear


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


def test_place_centred_handles_mixed_larger_and_smaller_sides():
    small = torch.arange(2 * 6, dtype=torch.float32).reshape(1, 2, 6)
    out = place_centred(small, torch.zeros(1, 4, 4))
    assert torch.equal(out[:, 1:3, :], small[:, :, 1:5])
    assert out[:, 0].abs().sum() == 0


def test_step_generators_continue_after_the_initial_noise():
    generator = step_generators([9], SHAPE)[0]
    reference = torch.Generator("cpu").manual_seed(9)
    torch.randn(SHAPE, generator=reference)
    assert torch.equal(torch.randn(3, generator=generator), torch.randn(3, generator=reference))
