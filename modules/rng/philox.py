"""torch's CUDA `randn` computed on the CPU: Philox4x32-10 (Random123) plus cuRAND's Box-Muller, laid out the
way PyTorch's CUDA kernel lays out threads, so a CPU or Apple machine makes the noise a CUDA card makes.

How PyTorch's CUDA generator fills a float32 tensor of n elements (facts from ATen's DistributionTemplates
and cuRAND, re-derived here, not copied):
- a launch of T = 256 * blocks threads, blocks = min(ceil(n / 256), SMs * (max threads per SM / 256));
- thread t runs `curand_init(seed, subsequence=t, offset)`: Philox key = (seed low 32 bits, high 32 bits),
  counter = (offset / 4, 0, t, 0) (the offset is the generator's, advanced by each call);
- each loop round j draws one counter (x0..x3) and turns it into four normals with Box-Muller:
  (sin, cos) of (x0, x1) then of (x2, x3); normal k of round j goes to element t + T * (4 * j + k);
- after the call the generator's offset grows by 4 * ceil(n / (4 * T)).
With no thread cap (`max_threads=None`, A1111's "NV") every element is normal 0 of its own thread: what any
card makes for n up to its thread count (41k on a T4, 221k on an A100; SD latents are 16k-66k).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PHILOX_M = (0xD2511F53, 0xCD9E8D57)  # round multipliers
PHILOX_W = (0x9E3779B9, 0xBB67AE85)  # key schedule (Weyl) increments
_MASK32 = np.uint64(0xFFFFFFFF)
# cuRAND's float constants: 2^-32 and 2^-32 * 2pi, as float32 values.
_TWO_POW32_INV = float(np.float32(2.3283064e-10))
_TWO_POW32_INV_2PI = float(np.float32(np.float32(2.3283064e-10) * np.float32(6.2831855)))
BLOCK_SIZE = 256
UNROLL = 4  # normals per Philox counter (curand_normal4)


def philox4x32_10(counter: Sequence, key: Sequence) -> np.ndarray:
    """Philox4x32 with 10 rounds: counter (4, N) and key (2, N) uint32-valued arrays -> (4, N) uint32."""
    c = [np.asarray(x, dtype=np.uint64) for x in counter]
    k0, k1 = (np.asarray(x, dtype=np.uint64) for x in key)
    for round_index in range(10):
        if round_index:  # the key is bumped before every round but the first
            k0 = (k0 + PHILOX_W[0]) & _MASK32
            k1 = (k1 + PHILOX_W[1]) & _MASK32
        p0 = c[0] * np.uint64(PHILOX_M[0])  # both factors < 2^32: the product fits in 64 bits
        p1 = c[2] * np.uint64(PHILOX_M[1])
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & _MASK32, (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & _MASK32]
    return np.stack(c).astype(np.uint32)


def box_muller(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cuRAND's Box-Muller on uint32 pairs -> (s*sin v, s*cos v) float32, rounding where float32 CUDA rounds
    (u and v are fused multiply-adds; log, sqrt, sin, cos each rounded once)."""
    f32 = np.float32
    u = (x.astype(f32).astype(np.float64) * _TWO_POW32_INV + _TWO_POW32_INV / 2).astype(f32)
    v = (y.astype(f32).astype(np.float64) * _TWO_POW32_INV_2PI + _TWO_POW32_INV_2PI / 2).astype(f32)
    log_u = np.log(u.astype(np.float64)).astype(f32)
    s = np.sqrt((f32(-2.0) * log_u).astype(np.float64)).astype(f32)
    v64 = v.astype(np.float64)
    sin_v, cos_v = np.sin(v64).astype(f32), np.cos(v64).astype(f32)
    return (s * sin_v).astype(f32), (s * cos_v).astype(f32)


def launch_threads(numel: int, max_threads: int | None = None) -> int:
    """Threads PyTorch launches for `numel` normals: whole blocks of 256, capped at `max_threads`
    (SMs x max threads per SM of the card; None = no cap)."""
    blocks = max(1, -(-numel // BLOCK_SIZE))
    if max_threads is not None:
        blocks = min(blocks, max(1, max_threads // BLOCK_SIZE))
    return blocks * BLOCK_SIZE


def cuda_normals_at(seed: int, offset: int, numel: int, indices: np.ndarray,
                    max_threads: int | None = None) -> np.ndarray:
    """Elements `indices` of CUDA `torch.randn(numel)` drawn at generator offset `offset` (counter units,
    i.e. PyTorch's philox offset / 4), as float32."""
    idx = np.asarray(indices, dtype=np.int64)
    threads = launch_threads(numel, max_threads)
    loop, rest = np.divmod(idx, threads * UNROLL)
    which, thread = np.divmod(rest, threads)
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    ctr_lo = np.uint64(offset) + loop.astype(np.uint64)
    counter = [ctr_lo & _MASK32, ctr_lo >> np.uint64(32), thread.astype(np.uint64), np.zeros_like(ctr_lo)]
    key = [np.full(idx.shape, seed & 0xFFFFFFFF, np.uint64), np.full(idx.shape, seed >> 32, np.uint64)]
    x = philox4x32_10(counter, key)
    first = which < 2  # normals 0, 1 come from (x0, x1); 2, 3 from (x2, x3)
    sin_v, cos_v = box_muller(np.where(first, x[0], x[2]), np.where(first, x[1], x[3]))
    return np.where(which % 2 == 0, sin_v, cos_v)


def offset_advance(numel: int, max_threads: int | None = None) -> int:
    """Counters one randn call of `numel` elements moves the generator on (PyTorch's offset / 4)."""
    return -(-numel // (launch_threads(numel, max_threads) * UNROLL))


class PhiloxGenerator:
    """A CPU stand-in for `torch.Generator("cuda").manual_seed(seed)`: successive `randn` calls give what
    successive CUDA `torch.randn` calls give (A1111's "NV" source when `max_threads` is None)."""

    def __init__(self, seed: int, max_threads: int | None = None):
        self.seed = int(seed)
        self.offset = 0  # counter units
        self.max_threads = max_threads

    def randn(self, shape: Sequence[int]) -> np.ndarray:
        """Standard normal float32 array of `shape`, advancing the generator as CUDA's would."""
        numel = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
        values = cuda_normals_at(self.seed, self.offset, numel, np.arange(numel), self.max_threads)
        self.offset += offset_advance(numel, self.max_threads)
        return values.reshape(tuple(shape))
