"""make_step_callback on a real tiny diffusers StableDiffusionPipeline: progress, previews, interrupt, skip.

The pipeline is built here from diffusers classes with tiny configs (random weights) and gets
`prompt_embeds` directly, so it needs no text encoder or tokenizer. 64x64 images; the tiny VAE
downsamples by 2, so latents (and cheap previews) are 32x32.
"""
from __future__ import annotations

import threading

import pytest
import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)

from modules.jobs.progress import JobContext, JobInterrupted, JobSkipped, make_step_callback
from modules.jobs.queue import JobQueue

WAIT = 30.0  # seconds; a safety net against hangs only
SCHEDULER = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "steps_offset": 1}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Run this module's tiny models on one intra-op thread, restoring the setting afterwards.

    Measured here: on 2 shared cores, a tiny UNet step takes ~2 s with 2 OpenMP threads under load
    (threads wait on each other) and ~0.05 s with one; tiny convolutions gain nothing from threads.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pipe():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
        )
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64),
            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
            layers_per_block=1, norm_num_groups=32, sample_size=64,
        )
    pipe = StableDiffusionPipeline(
        vae=vae.eval(), text_encoder=None, tokenizer=None, unet=unet.eval(),
        scheduler=EulerDiscreteScheduler(**SCHEDULER), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def unet_calls(pipe):
    """Counts UNet forward passes (one per sampling step without CFG) with a forward hook."""
    calls = []
    handle = pipe.unet.register_forward_hook(lambda module, args, output: calls.append(1))
    yield calls
    handle.remove()


@pytest.fixture
def queue():
    q = JobQueue(preview_every_n_steps=2)
    yield q
    q.shutdown(timeout=WAIT)


def embeds() -> torch.Tensor:
    return torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(0))


def generation(pipe, n_iter: int, steps: int, wrap=None):
    """A job function shaped like txt2img's batch loop: returns the images of completed batches."""
    def run(ctx: JobContext):
        ctx.set_total(steps, n_iter)
        images = []
        try:
            for index in range(n_iter):
                ctx.check()
                with ctx.batch(index) as scope:
                    callback = make_step_callback(ctx, latent_family="sd1")
                    out = pipe(
                        prompt_embeds=embeds(), guidance_scale=1.0, num_inference_steps=steps, height=64,
                        width=64, generator=torch.Generator().manual_seed(index),
                        callback_on_step_end=wrap(ctx, callback) if wrap else callback,
                    )
                if scope.completed:
                    images.extend(out.images)
        except JobInterrupted:
            pass  # the images of finished batches stay
        return images

    return run


def pausing_at(image: int, step: int, reached: threading.Event, resume: threading.Event):
    """Wrap a step callback so it stops at (image, step) until the test has acted."""
    def wrap(ctx, inner):
        def callback(p, i, t, kwargs):
            if (ctx.snapshot().image_index, i) == (image, step):
                reached.set()
                assert resume.wait(WAIT)
            return inner(p, i, t, kwargs)
        return callback
    return wrap


def test_progress_and_previews_through_a_real_pipeline(pipe, queue):
    job = queue.submit("txt2img", generation(pipe, n_iter=1, steps=4))
    images = job.wait_result(WAIT)
    assert job.state == "done", job.error
    assert len(images) == 1 and images[0].size == (64, 64)
    snap = job.snapshot()
    assert (snap.step, snap.steps_total, snap.progress) == (4, 4, 1.0)
    assert snap.preview_id == 2 and snap.preview.size == (32, 32)  # latent-sized, every 2nd of 4 steps


def test_interrupt_stops_the_pipeline_within_one_step(pipe, queue, unet_calls):
    reached, resume = threading.Event(), threading.Event()
    job = queue.submit("txt2img", generation(pipe, n_iter=3, steps=5, wrap=pausing_at(1, 2, reached, resume)))
    assert reached.wait(WAIT)
    queue.interrupt()
    resume.set()
    images = job.wait_result(WAIT)
    assert job.state == "interrupted" and job.error is None
    assert len(images) == 1  # batch 0 finished and is kept; batch 1 stopped; batch 2 never ran
    assert len(unet_calls) == 5 + 3  # batch 1 ran steps 0, 1, 2 and not one more


def test_skip_continues_with_the_next_batch(pipe, queue, unet_calls):
    reached, resume = threading.Event(), threading.Event()
    job = queue.submit("txt2img", generation(pipe, n_iter=3, steps=4, wrap=pausing_at(1, 1, reached, resume)))
    assert reached.wait(WAIT)
    queue.skip()
    resume.set()
    images = job.wait_result(WAIT)
    assert job.state == "done" and len(images) == 2
    assert len(unet_calls) == 4 + 2 + 4


def test_flag_mode_lets_diffusers_finish_early_with_a_partial_image(pipe, unet_calls):
    ctx = JobContext("j")
    ctx.set_total(5, 1)
    inner = make_step_callback(ctx, on_stop="flag")

    def callback(p, i, t, kwargs):
        if i == 2:
            ctx.request_interrupt()
        return inner(p, i, t, kwargs)

    out = pipe(prompt_embeds=embeds(), guidance_scale=1.0, num_inference_steps=5, height=64, width=64,
               callback_on_step_end=callback)
    # diffusers honoured pipe._interrupt: the remaining steps were skipped, the latents still decoded.
    assert len(unet_calls) == 3 and out.images[0].size == (64, 64)
    with pytest.raises(JobInterrupted):
        ctx.check()
    # The flag is reset by the next call, so a shared pipeline is not left stopped.
    fresh = JobContext("k")
    pipe(prompt_embeds=embeds(), guidance_scale=1.0, num_inference_steps=2, height=64, width=64,
         callback_on_step_end=make_step_callback(fresh, on_stop="flag"))
    assert fresh.snapshot().step == 2


def test_raise_mode_propagates_out_of_the_pipeline_call(pipe, unet_calls):
    ctx = JobContext("j")
    ctx.request_skip()
    with pytest.raises(JobSkipped):
        pipe(prompt_embeds=embeds(), guidance_scale=1.0, num_inference_steps=3, height=64, width=64,
             callback_on_step_end=make_step_callback(ctx))
    assert len(unet_calls) == 1


def test_second_order_scheduler_and_step_offset_count_user_steps(pipe):
    heun = HeunDiscreteScheduler(**SCHEDULER)
    original, pipe.scheduler = pipe.scheduler, heun
    try:
        ctx = JobContext("j")
        ctx.set_total(3 + 3, 1)  # e.g. a 3-step first pass and a 3-step second (hires) pass
        seen = []
        inner = make_step_callback(ctx, step_offset=3, pass_steps=3)

        def callback(p, i, t, kwargs):
            out = inner(p, i, t, kwargs)
            seen.append(ctx.snapshot().step)
            return out

        pipe(prompt_embeds=embeds(), guidance_scale=1.0, num_inference_steps=3, height=64, width=64,
             callback_on_step_end=callback)
    finally:
        pipe.scheduler = original
    assert len(seen) == 5  # Heun: 2n-1 model calls for n steps
    assert seen == sorted(seen) and seen[-1] == 6


def test_unknown_family_or_mode_fails_at_set_up():
    with pytest.raises(ValueError, match="latent preview"):
        make_step_callback(JobContext(), latent_family="sd3")
    with pytest.raises(ValueError, match="on_stop"):
        make_step_callback(JobContext(), on_stop="later")
