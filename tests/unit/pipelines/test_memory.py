"""apply_memory_policy on a real tiny pipeline: dtypes, placement, offload hooks, attention and VAE savers.

This machine has no GPU, so the offload tests read what the policy leaves on the modules, and run what
can run on a CPU:
- model offload (medvram) is applied with the policy's real device string "cuda:0": accelerate only records
  it in the hooks until a forward runs, so the hooks, their execution device and the weights waiting on the
  CPU can be checked (pipe.to("cuda") would fail loudly here if placement were attempted). Applied with the
  CPU as execution device, the same hooks run a whole generation, which must equal the plain one.
- sequential offload (lowvram) puts buffers on the execution device at once, which needs CUDA for
  "cuda:0", so it is applied with the CPU as execution device and its hooks and "meta" weights are checked.
  A forward through those hooks cannot run here: diffusers names the device "cpu:0", and torch 2.13
  copies a Parameter moved from "cpu" to "cpu:0" into a plain Tensor, which accelerate then refuses
  (on a GPU the weights arrive on "cuda:0" as named, so this is a CPU-only artefact).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from modules.devices import MemoryPolicy, execution_device
from modules.generation.txt2img import generate_txt2img
from modules.pipelines.manager import LoadedModel, model_family
from modules.pipelines.memory import apply_memory_policy
from modules.pipelines.registry import CheckpointInfo
from modules.types import GenerationRequest
from tests.fixtures.tiny_models import build_tiny_sd15_pipeline

REQUEST = GenerationRequest(prompt="a red house", width=64, height=64, steps=2, sampler_name="Euler", seed=3)
COMPONENTS = ("unet", "text_encoder", "vae")


@pytest.fixture
def pipe():
    """A fresh tiny SD1.5 pipeline (policies change it for good)."""
    return build_tiny_sd15_pipeline(seed=0)


def as_model(pipe) -> LoadedModel:
    info = CheckpointInfo(path=Path("/models/tiny.safetensors"), name="tiny.safetensors", model_name="tiny",
                          hash="0123456789abcdef")
    return LoadedModel(info, pipe, model_family(pipe), "sd15", MemoryPolicy())


def pixels(pipe) -> np.ndarray:
    return np.asarray(generate_txt2img(as_model(pipe), REQUEST).images[0], dtype=np.int16)


def devices_of(module: torch.nn.Module) -> set[str]:
    return {p.device.type for p in module.parameters()}


def test_all_on_device_casts_each_component_and_keeps_the_vae_dtype_apart(pipe):
    policy = MemoryPolicy(device="cpu", dtype="float16", vae_dtype="float32", channels_last=True)
    apply_memory_policy(pipe, policy)
    assert {p.dtype for p in pipe.unet.parameters()} == {torch.float16}
    assert {p.dtype for p in pipe.text_encoder.parameters()} == {torch.float16}
    assert {p.dtype for p in pipe.vae.parameters()} == {torch.float32}  # --no-half-vae
    for name in COMPONENTS:
        component = getattr(pipe, name)
        assert devices_of(component) == {"cpu"} and not hasattr(component, "_hf_hook"), name
    conv = pipe.unet.conv_in.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert not pipe.vae.use_slicing and not pipe.vae.use_tiling


def test_model_offload_hooks_every_component_for_the_policys_gpu(pipe):
    from accelerate.hooks import CpuOffload

    policy = MemoryPolicy(device="cuda:0", dtype="float16", offload="model", vae_slicing=True)
    apply_memory_policy(pipe, policy)
    for name in COMPONENTS:
        component = getattr(pipe, name)
        assert isinstance(component._hf_hook, CpuOffload), name
        assert component._hf_hook.execution_device == torch.device("cuda:0"), name
        assert devices_of(component) == {"cpu"}, name  # waits on the CPU until its forward runs
    assert execution_device(pipe) == torch.device("cuda:0")  # where our latents and embeddings go
    assert {p.dtype for p in pipe.unet.parameters()} == {torch.float16}
    assert pipe.vae.use_slicing and not pipe.vae.use_tiling


def test_model_offload_through_the_hooks_generates_the_same_image(pipe):
    plain = pixels(build_tiny_sd15_pipeline(seed=0))
    apply_memory_policy(pipe, MemoryPolicy(device="cpu", offload="model"))
    assert all(hasattr(getattr(pipe, name), "_hf_hook") for name in COMPONENTS)
    assert np.array_equal(pixels(pipe), plain)


def test_sequential_offload_keeps_every_weight_off_the_device_between_layer_calls(pipe):
    from accelerate.hooks import AlignDevicesHook

    policy = MemoryPolicy(device="cpu", offload="sequential", vae_slicing=True, vae_tiling=True)
    apply_memory_policy(pipe, policy)
    for name in COMPONENTS:
        component = getattr(pipe, name)
        assert devices_of(component) == {"meta"}, name
        # each module owning weights loads them onto the execution device for its own forward
        owners = [m for m in component.modules() if any(True for _ in m.parameters(recurse=False))]
        hooks = [getattr(m, "_hf_hook", None) for m in owners]
        assert owners and all(isinstance(h, AlignDevicesHook) for h in hooks), name
        assert {m._hf_hook.execution_device for m in owners} == {torch.device("cpu", 0)}, name
    assert execution_device(pipe) == torch.device("cpu", 0)
    assert pipe.vae.use_slicing and pipe.vae.use_tiling


def test_attention_slicing_replaces_the_unets_attention_processors(pipe):
    apply_memory_policy(pipe, MemoryPolicy(device="cpu", attention_slicing=True))
    kinds = {type(p).__name__ for p in pipe.unet.attn_processors.values()}
    assert kinds == {"SlicedAttnProcessor"}


def test_a_broken_xformers_falls_back_to_sdp_with_a_warning(pipe, caplog):
    apply_memory_policy(pipe, MemoryPolicy(device="cpu", attention="xformers"))
    assert "xformers failed to enable" in caplog.text
    assert {type(p).__name__ for p in pipe.unet.attn_processors.values()} == {"AttnProcessor2_0"}


def test_a_job_asks_diffusers_for_the_execution_device_once(pipe, monkeypatch):
    # diffusers' _execution_device walks every submodule (~5 ms on SD 1.5); a job needs the answer 4-5 times
    calls = []
    slow = type(pipe)._execution_device

    def counted(self):
        calls.append(1)
        return slow.fget(self)

    monkeypatch.setattr(type(pipe), "_execution_device", property(counted))
    apply_memory_policy(pipe, MemoryPolicy(device="cpu"))
    pixels(pipe)
    first = len(calls)
    pixels(pipe)
    assert first <= 2 and len(calls) - first <= 1  # ours once (then kept), diffusers' own __call__ once a job


def test_the_kept_execution_device_follows_offload_hooks_added_later(pipe):
    apply_memory_policy(pipe, MemoryPolicy(device="cpu"))
    assert execution_device(pipe) == torch.device("cpu")
    pipe.enable_model_cpu_offload(device="cpu")  # not through apply_memory_policy: only the key can tell
    assert execution_device(pipe) == torch.device("cpu", 0) == pipe._execution_device
