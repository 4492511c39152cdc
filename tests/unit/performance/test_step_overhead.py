"""No per-step overhead that grows with steps: with live previews off, a job makes the same number of
host reads of tensors (.item(), .cpu(), .numpy(), bool/float of a tensor: device syncs on a GPU) at 2
steps as at 6. Counted with a TorchFunctionMode over the whole job: our step callbacks, progress, hooks."""
from __future__ import annotations

import collections
from pathlib import Path

import pytest
from torch.overrides import TorchFunctionMode

from modules.devices import MemoryPolicy
from modules.generation.txt2img import generate_txt2img
from modules.jobs.progress import JobContext
from modules.pipelines.manager import LoadedModel, model_family
from modules.pipelines.registry import CheckpointInfo
from modules.types import GenerationRequest

HOST_READS = {"item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__", "nonzero"}


class HostReads(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.counts: collections.Counter = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in HOST_READS:
            self.counts[name] += 1
        return func(*args, **(kwargs or {}))


@pytest.fixture(scope="module")
def model(tiny_sd15_pipe) -> LoadedModel:
    info = CheckpointInfo(path=Path("/models/tiny.safetensors"), name="tiny.safetensors", model_name="tiny")
    return LoadedModel(info, tiny_sd15_pipe, model_family(tiny_sd15_pipe), "sd15", MemoryPolicy())


def host_reads(model, steps: int) -> dict[str, int]:
    # DPM++ 2M: diffusers' own step makes no host reads (Euler compares its CPU-kept sigma with s_tmin/s_tmax
    # every step, which is diffusers' and costs no GPU sync).
    request = GenerationRequest(prompt="a red house", width=64, height=64, steps=steps, seed=1,
                                sampler_name="DPM++ 2M")
    reads = HostReads()
    with reads:
        generate_txt2img(model, request, progress=JobContext(preview_every_n_steps=0))
    return dict(reads.counts)


def test_host_reads_do_not_grow_with_steps_when_previews_are_off(model):
    assert host_reads(model, 2) == host_reads(model, 6)
