"""A1111's noise sources (setting `randn_source`) and one generator per seed for each.

- GPU (A1111's default): torch's generator on the model's device; on Apple MPS a CPU generator (MPS has no
  seedable generator A1111 trusts), and on a CPU-only machine that is simply the CPU generator, so GPU and
  CPU give the same images there.
- CPU: torch's CPU generator, the same noise on any machine with any card.
- NV: PhiloxGenerator, CUDA's randn computed on the CPU: NVIDIA's noise on a CPU, Apple or AMD machine.
ENSD (`eta_noise_seed_delta`): after the first noise, step noise comes from generators seeded seed + ENSD.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import torch

from modules.rng.philox import PhiloxGenerator
from modules.types import UserInputError

SOURCES = ("GPU", "CPU", "NV")
DEFAULT_SOURCE = "GPU"
SEED_MASK = 0xFFFF_FFFF_FFFF_FFFF  # the 64 bits of a seed that torch and Philox use
Generator = Union[torch.Generator, PhiloxGenerator]


@dataclass(frozen=True)
class RngConfig:
    """Where a job's noise comes from: source, ENSD, and the device the model runs on."""

    source: str = DEFAULT_SOURCE
    ensd: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise UserInputError(f"unknown random number source {self.source!r}; choose one of "
                                 f"{', '.join(SOURCES)}", field="randn_source")
        object.__setattr__(self, "device", torch.device(self.device))

    @property
    def torch_device(self) -> torch.device:
        """Device of the torch generators (GPU and CPU sources)."""
        if self.source == "CPU" or self.device.type == "mps":
            return torch.device("cpu")
        return self.device

    def create_generator(self, seed: int) -> Generator:
        """A fresh generator seeded with `seed` (A1111's create_generator)."""
        if self.source == "NV":
            return PhiloxGenerator(int(seed))
        return seeded_generator(seed, self.torch_device)

    def randn(self, generator: Generator, shape: tuple[int, ...]) -> torch.Tensor:
        """The generator's next standard normal float32 tensor of `shape` (on the generator's device)."""
        if isinstance(generator, PhiloxGenerator):
            return torch.from_numpy(generator.randn(shape))
        return torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float32)


def seeded_generator(seed: int, device: Any = "cpu") -> torch.Generator:
    """`torch.Generator(device).manual_seed(seed)` for any int seed.

    torch takes seeds in -2**63..2**64-1 and maps a negative one to its value modulo 2**64; any other int (a
    seed pasted from elsewhere, or seed + batch index past the top) raised an overflow that failed the job.
    Taking every seed modulo 2**64 gives the same noise for every seed torch took, as the NV source's 64-bit
    Philox key already does."""
    return torch.Generator(device).manual_seed(int(seed) & SEED_MASK)


def rng_config(setting: Any, device: Any = "cpu") -> RngConfig:
    """The job's RngConfig from a settings lookup (`setting(key)`, e.g. GenerationEnv.setting)."""
    ensd = setting("eta_noise_seed_delta")
    return RngConfig(str(setting("randn_source") or DEFAULT_SOURCE), int(ensd or 0), torch.device(device))
