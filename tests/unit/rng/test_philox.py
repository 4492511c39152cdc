"""NV source: Philox4x32-10 against Random123's known answers, then CUDA `torch.randn` values published by
people who ran it on NVIDIA cards (no CUDA machine was lent to record our own; each source is named)."""
from __future__ import annotations

import numpy as np
import pytest

from modules.rng.philox import PhiloxGenerator, cuda_normals_at, launch_threads, offset_advance, philox4x32_10

# Random123 tests/kat_vectors (github.com/DEShawResearch/random123), the three "philox4x32 10" lines:
# counter (4 words), key (2 words) -> output (4 words).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]
PRINTED = 5e-5  # the sources print 4 decimals


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_philox4x32_10_gives_random123s_known_answers(counter, key, expected):
    out = philox4x32_10([[c] for c in counter], [[k] for k in key])
    assert tuple(int(v) for v in out[:, 0]) == expected


def test_seed_0_matches_cuda_randn_printed_in_two_places():
    # A1111 modules/rng_philox.py docstring: Generator(seed=0).randn((3, 4)), "same as torch.randn(...,
    # device='cuda')", 8 digits. A1111 keeps u and v in float64; CUDA (and we) hold them in float32, and v's
    # rounding (half an ulp of ~2pi, 2.4e-7) moves s*sin(v) by up to ~6e-7.
    a1111 = [[-0.92466259, -0.42534415, -2.6438457, 0.14518388],
             [-0.12086647, -0.57972564, -0.62285122, -0.32838709],
             [-1.07454231, -0.36314407, -1.67105067, 2.26550497]]
    assert np.allclose(PhiloxGenerator(0).randn((3, 4)), a1111, rtol=0, atol=1e-6)
    # kapilsh's "CUDA Mode - Fusing Kernels Talk" blog (2024-05-30): an 8x8 torch.randn on cuda:0 after
    # torch.manual_seed(0), printed in full; rows 1, 4 and 8 here.
    out = PhiloxGenerator(0).randn((8, 8))
    assert np.allclose(out[0], [-0.9247, -0.4253, -2.6438, 0.1452, -0.1209, -0.5797, -0.6229, -0.3284],
                       atol=PRINTED)
    assert np.allclose(out[3], [0.0697, -0.0074, 1.8969, 0.6878, -0.0779, -0.8373, 1.3506, -0.2879],
                       atol=PRINTED)
    assert np.allclose(out[7], [-0.5499, -0.3231, -0.5469, 0.9049, 0.2837, 0.1210, 0.4730, -1.0823],
                       atol=PRINTED)


def test_other_seeds_and_positions_match_published_cuda_values():
    # pytorch/pytorch#62467 (RTX A6000): seed 43, normal_ on (1, 3, 128, 128), noise[..., 0, 0].
    out = PhiloxGenerator(43).randn((1, 3, 128, 128))
    assert np.allclose(out[..., 0, 0], [[1.9983, 0.8704, 2.1127]], atol=PRINTED)
    # pytorch/pytorch#158398: seed 42, randn([1, 64, 2048]); the starts of rows 0 and 1 (both machines agree).
    out = PhiloxGenerator(42).randn((1, 64, 2048))
    assert np.allclose(out[0, 0, :3], [0.1940, 2.1614, -0.1721], atol=PRINTED)
    assert np.allclose(out[0, 1, :3], [-0.4574, 0.8063, 0.1580], atol=PRINTED)


def test_tensors_larger_than_the_card_wrap_as_on_an_a100_and_an_h100():
    # pytorch/pytorch#143086: seed 1, randn(1, 49*12*112*144) printed on an A100 (108 SMs x 2048 threads) and
    # an H100 (132 SMs x 2048): the same start, different ends, because the launch is capped per card.
    n = 49 * 12 * 112 * 144
    ends = np.array([0, 1, 2, n - 3, n - 2, n - 1])
    a100 = cuda_normals_at(1, 0, n, ends, max_threads=108 * 2048)
    h100 = cuda_normals_at(1, 0, n, ends, max_threads=132 * 2048)
    assert np.allclose(a100, [-0.2963, 2.6764, -0.1408, 0.1549, -0.6797, -0.1656], atol=PRINTED)
    assert np.allclose(h100, [-0.2963, 2.6764, -0.1408, -0.6970, -0.7780, 0.3267], atol=PRINTED)


def test_successive_draws_move_the_counter_as_cuda_does():
    generator = PhiloxGenerator(7)
    first, second = generator.randn((4, 8, 8)), generator.randn((4, 8, 8))
    assert not np.array_equal(first, second)
    assert np.array_equal(second.ravel(), cuda_normals_at(7, 1, 256, np.arange(256)))
    assert offset_advance(100) == 1 and launch_threads(100) == 256
    # a capped launch: 4 normals per thread per round, so 2 rounds for 8 * 256 + 1 elements on 256 threads
    assert offset_advance(8 * 256 + 1, max_threads=256) == 3
    assert PhiloxGenerator(7).randn((2, 3)).dtype == np.float32
