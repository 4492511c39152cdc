"""Per-step overhead of a real txt2img run: the step callbacks (progress, prompt editing) never read a tensor
back to the CPU (a device sync on a GPU) when live previews are off, and do the same work on every step.

A TorchFunctionMode sees every torch call made inside the chained callback_on_step_end; the tiny SD1.5
pipeline runs 64x64 with a prompt-editing prompt, so the conditioning callback works every step too.
"""
from __future__ import annotations

import pytest
from torch.overrides import TorchFunctionMode

from modules.generation import passes
from modules.generation.txt2img import generate_txt2img
from modules.jobs.progress import JobContext
from modules.types import GenerationRequest
from tests.unit.generation.conftest import loaded

# Calls that copy a tensor to the host or read a value from it: each waits for the GPU. (`.to(device)` is
# left out: on a CPU-only machine it cannot be told apart from the legitimate moves to the model's device.)
READBACKS = {"item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__", "nonzero"}
REQUEST = GenerationRequest(prompt="a [red:blue:0.5] house", negative_prompt="blurry", width=64, height=64,
                            steps=4, sampler_name="Euler", seed=10)


class CallRecorder(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


REAL_CHAIN = passes.chain_callbacks


@pytest.fixture(scope="module")
def sd15(tiny_sd15_pipe):
    return loaded(tiny_sd15_pipe, "tiny-sd15", "sd15")


def record_steps(monkeypatch, model, steps: int, every: int = 0) -> list[list[str]]:
    """Torch calls made inside the step callbacks, one list per step, for one job of `steps` steps."""
    per_step: list[list[str]] = []

    def chain(*callbacks):
        inner = REAL_CHAIN(*callbacks)

        def recorded(pipe, step, timestep, tensors):
            recorder = CallRecorder()
            with recorder:
                out = inner(pipe, step, timestep, tensors)
            per_step.append(recorder.names)
            return out

        return recorded if inner is not None else None

    monkeypatch.setattr(passes, "chain_callbacks", chain)
    job = JobContext("job", preview_every_n_steps=every)
    job._set_state("running")
    generate_txt2img(model, REQUEST.with_changes(steps=steps), progress=job)
    return per_step


def test_step_callbacks_read_nothing_back_and_cost_the_same_every_step(monkeypatch, sd15):
    short = record_steps(monkeypatch, sd15, 3)
    long = record_steps(monkeypatch, sd15, 6)
    assert len(short) == 3 and len(long) == 6
    readbacks = [name for step in short + long for name in step if name in READBACKS]
    assert readbacks == [], f"host read-backs in the step callbacks: {sorted(set(readbacks))}"
    # No work that grows with the step count: every step makes the same calls (the one exception is the
    # prompt-editing switch, [red:blue:0.5], which swaps the embeddings once), in a short run as in a long one.
    for run in (short, long):
        counts = sorted(len(step) for step in run)
        assert counts[:-1] == [counts[0]] * (len(run) - 1), counts
    steady = min(len(step) for step in long)
    assert sum(map(len, long)) == sum(map(len, short)) + 3 * steady


def test_previews_at_their_interval_make_no_readback_on_the_worker(monkeypatch, sd15):
    # The lazy preview only queues the latent->RGB kernels; the copy happens when the page reads it.
    steps = record_steps(monkeypatch, sd15, 4, every=2)
    readbacks = [name for step in steps for name in step if name in READBACKS]
    assert readbacks == []
    assert len(steps[1]) > len(steps[0])  # step 2 made a preview, step 1 did not
