"""Per-job checkpoints and failed loads on a real AppContext over tiny checkpoints.

The loader counts the pipelines it made that are still alive each time it is asked for another: a job that
names another checkpoint must not keep the current one alive while that one loads and runs, and a
checkpoint that fails to load must leave the server with the model it had, ready for the next job.
"""
from __future__ import annotations

import gc
import shutil
import weakref
from pathlib import Path

import pytest
import torch

from modules.context import build_context, load_initial_model
from modules.flags import parse_flags
from modules.generation.service import run_generation, submit_generation
from modules.jobs.progress import JobContext
from modules.pipelines.loading import CheckpointError, load_pipeline
from modules.pipelines.manager import PipelineManager, check_header
from modules.types import GenerationRequest

ROOT = Path(__file__).resolve().parents[3]
WAIT = 120  # seconds; a safety net against hangs only
SMALL = dict(prompt="x", seed=3, width=64, height=64, steps=2, save_images=False)


class CountingLoader:
    """The real loader, plus: how many pipelines it made were alive (after gc) at each load."""

    def __init__(self):
        self.made: list[weakref.ref] = []
        self.live_at_load: list[int] = []
        self.loads: list[str] = []

    def __call__(self, path, **kwargs):
        gc.collect()
        self.live_at_load.append(sum(ref() is not None for ref in self.made))
        self.loads.append(Path(path).stem)
        pipe, info = load_pipeline(path, **kwargs)
        self.made.append(weakref.ref(pipe))
        return pipe, info


def copy_checkpoint(checkpoint, folder: Path) -> None:
    shutil.copy2(checkpoint.path, folder / checkpoint.path.name)
    shutil.copytree(checkpoint.config_dir, folder / checkpoint.config_dir.name)


@pytest.fixture
def ctx(tmp_path, tiny_sd15_checkpoint, tiny_inpaint_checkpoint):
    ckpt_dir = tmp_path / "Stable-diffusion"
    ckpt_dir.mkdir()
    copy_checkpoint(tiny_sd15_checkpoint, ckpt_dir)
    copy_checkpoint(tiny_inpaint_checkpoint, ckpt_dir)
    # A pickle that is not one (its header cannot be checked without reading it) and a broken safetensors.
    (ckpt_dir / "broken-pickle.ckpt").write_bytes(b"not a checkpoint at all")
    (ckpt_dir / "broken-header.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    flags = parse_flags(["--data-dir", str(tmp_path / "data"), "--ckpt-dir", str(ckpt_dir),
                         "--ckpt", str(ckpt_dir / tiny_sd15_checkpoint.path.name), "--no-download-sd-model"])
    context = build_context(flags, ROOT)
    context.loader = CountingLoader()
    context.pipelines = PipelineManager(context.policy_for, loader=context.loader, precheck=check_header)
    load_initial_model(context)
    assert context.model_error is None
    yield context
    context.close()


def test_a_job_on_another_checkpoint_never_keeps_two_models_alive(ctx):
    before = ctx.pipelines.current.checkpoint.path
    result = run_generation(ctx, GenerationRequest(**SMALL, sd_model_checkpoint="tiny-sd15-inpaint"))
    assert "Model: tiny-sd15-inpaint" in result.infotexts[0]
    assert ctx.pipelines.current.checkpoint.path == before
    assert ctx.loader.loads == ["tiny-sd15", "tiny-sd15-inpaint", "tiny-sd15"]
    # At start-up none; for the job's model and for the way back, the other one was already freed.
    assert ctx.loader.live_at_load == [0, 0, 0]


def test_a_job_on_a_checkpoint_that_fails_to_load_leaves_the_model_as_it_was(ctx):
    before = ctx.pipelines.current.checkpoint.path
    for name in ("broken-pickle", "broken-header"):
        request = GenerationRequest(**SMALL, override_settings={"sd_model_checkpoint": name})
        job = submit_generation(ctx, request)
        assert job.wait(WAIT) and job.state == "failed"
        assert isinstance(job.exception, CheckpointError) and name in job.error
        assert ctx.pipelines.current is not None and ctx.pipelines.current.checkpoint.path == before
    # The pickle's failure needed the model back from disk; the broken header was refused before any freeing.
    assert ctx.loader.loads == ["tiny-sd15", "broken-pickle", "tiny-sd15"]
    assert max(ctx.loader.live_at_load) == 0
    # And the next job generates with it.
    job = submit_generation(ctx, GenerationRequest(**SMALL))
    result = job.wait_result(WAIT)
    assert job.state == "done", job.error
    assert "Model: tiny-sd15," in result.infotexts[0] and len(result.images) == 1


class OutOfMemoryAtFirstStep(JobContext):
    """Progress whose first step raises as a CUDA OOM in the middle of sampling would."""

    def step(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")


def test_a_job_that_fails_on_another_checkpoint_frees_it_before_the_way_back(ctx):
    """An OOM inside the job's model: the traceback's frames hold that model; the way back must not
    load beside it."""
    before = ctx.pipelines.current.checkpoint.path
    request = GenerationRequest(**SMALL, sd_model_checkpoint="tiny-sd15-inpaint")
    with pytest.raises(torch.OutOfMemoryError, match="simulated"):
        run_generation(ctx, request, OutOfMemoryAtFirstStep())
    assert ctx.loader.loads == ["tiny-sd15", "tiny-sd15-inpaint", "tiny-sd15"]
    assert ctx.loader.live_at_load == [0, 0, 0]
    assert ctx.pipelines.current.checkpoint.path == before


def test_a_failed_job_releases_offload_hooks_and_frees_memory(ctx):
    pipe = ctx.pipelines.current.pipe
    calls = []
    original = pipe.maybe_free_model_hooks
    pipe.maybe_free_model_hooks = lambda: (calls.append(1), original())[1]
    job = ctx.jobs.submit("t", lambda job_ctx: 1 / 0)
    assert job.wait(WAIT) and job.state == "failed"
    assert calls == [1]
