"""One pipeline call with everything a job wraps around it, shared by txt2img, hires, refiner and img2img.

A pass = scheduler for the chosen sampler, the conditioning's kwargs/patch/step callback, progress and
interrupt/skip through the job context, optional seamless tiling. Stopping uses the jobs module's "flag"
mode: diffusers skips the remaining steps, and the pass hands back the denoised prediction of the step it
stopped at (A1111's interrupted image), and the caller asks `stop_requested` whether to run further passes.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from modules.devices import execution_device
from modules.generation.denoised import denoised_trace, stopped_early
from modules.generation.guidance import uncond_skipping
from modules.generation.hook_calls import step_callback
from modules.generation.prompting import tensor_inputs
from modules.generation.runtime import (
    callback_tensor_names,
    chain_callbacks,
    derived_pipeline,
    scheduler_swapped,
    seamless_tiling,
)
from modules.jobs.progress import JobInterrupted, make_step_callback
from modules.performance.tome import token_merging
from modules.prompts.composable import ComposablePatch
from modules.sampler_params import apply_sampler_params
from modules.samplers import build_scheduler, model_scheduler_config


@dataclass
class PassSpec:
    """How to run one pass: sampler rows, progress bookkeeping (steps in user-visible counts), tiling."""

    sampler: Any  # samplers.SamplerSpec
    schedule: Any  # samplers.ScheduleSpec
    seed: int | list[int]  # seeds the scheduler's own noise (DPM++ SDE's Brownian tree: one per image)
    steps: int  # user-visible steps this pass runs
    step_offset: int = 0  # steps of earlier passes in the same batch
    tiling: bool = False
    latent_family: str = "sd1"
    params: Any = None  # sampler_params.SamplerParams: eta, sigma churn, schedule sigmas, img2img noise
    token_merging_ratio: float = 0.0  # ToMe for this pass (modules/performance/tome.py); 0 = off
    guidance: Any = None  # guidance.UncondSkip: Skip Early CFG / NGMS rules; None = every step has CFG


log = logging.getLogger(__name__)

def stop_requested(progress) -> bool:
    """True once interrupt or skip was pressed for the running job."""
    return progress is not None and (progress.interrupted or progress.skip_requested)


def run_batches(n_iter: int, batch_size: int, progress, run_batch: Callable[[int, slice], None]) -> bool:
    """Call run_batch(index, image slice) n_iter times; a skip ends one batch, an interrupt the loop.
    Returns True when the job was interrupted (the images made so far stay with the caller)."""
    try:
        for index in range(n_iter):
            if progress is not None and progress.interrupted:
                return True
            with progress.batch(index) if progress is not None else contextlib.nullcontext():
                run_batch(index, slice(index * batch_size, (index + 1) * batch_size))
                if progress is not None:
                    progress.check()  # after the images are kept: JobSkipped ends this batch only
    except JobInterrupted:
        return True
    return False


def progress_callback(progress, spec: PassSpec):
    """The job's step callback for this pass (None without a job context)."""
    if progress is None:
        return None
    return make_step_callback(progress, latent_family=spec.latent_family, step_offset=spec.step_offset,
                              pass_steps=spec.steps, on_stop="flag")


def run_pass(pipe, cond, spec: PassSpec, progress=None, *, env=None, **call_kwargs):
    """Call `pipe` once with the pass's scheduler, conditioning and callbacks; returns the pipeline output.
    `env` brings the extensions' on_step hooks (they run before progress, which may stop the pass)."""
    base_config = model_scheduler_config(pipe.scheduler)
    scheduler = build_scheduler(base_config, spec.sampler, spec.schedule, seed=spec.seed,
                                steps=call_kwargs.get("num_inference_steps"))
    apply_sampler_params(scheduler, spec.params)
    callback = chain_callbacks(cond.step_callback, step_callback(env, spec.steps),
                               progress_callback(progress, spec))
    if callback is not None:
        call_kwargs["callback_on_step_end"] = callback
        call_kwargs["callback_on_step_end_tensor_inputs"] = callback_tensor_names(pipe, tensor_inputs(cond))
    # The uncond-skip wrapper goes over the AND patch (entered after it), so it sees one call per evaluation.
    skipping = uncond_skipping(pipe, spec.guidance, composable=isinstance(cond.patch, ComposablePatch))
    with scheduler_swapped(pipe, scheduler), seamless_tiling(pipe, spec.tiling), cond.patch, skipping, \
            token_merging(pipe, spec.token_merging_ratio), denoised_trace(scheduler) as trace:
        output = pipe(**cond.pipe_kwargs, **call_kwargs)
    # Stopped part-way: hand back the last step's denoised prediction, as A1111 does, not the noisy latents.
    if (call_kwargs.get("output_type") == "latent" and trace.latest is not None
            and stopped_early(pipe, trace)):
        output.images = trace.latest.to(output.images.dtype)
    return output


def decode_latents(pipe, latents: torch.Tensor) -> list:
    """Latents (already scaled by the VAE factor) -> PIL images.

    A float16 VAE that asks for it (SDXL's force_upcast) decodes in float32. One that produces NaNs
    anyway (A1111's "auto VAE precision") is switched to float32 for good and the decode is retried,
    so the user gets an image instead of a black square.
    """
    vae = pipe.vae
    original = vae.dtype
    upcast = original == torch.float16 and getattr(vae.config, "force_upcast", False)  # SDXL's VAE overflows
    with torch.no_grad():
        if upcast:
            vae.to(torch.float32)
        try:
            images = _vae_decode(pipe, latents)
        finally:
            if upcast:
                vae.to(original)
        if vae.dtype != torch.float32 and torch.isnan(images).any():
            log.warning("The VAE produced NaNs in %s; switching it to float32 (as --no-half-vae) and retrying",
                        str(vae.dtype).replace("torch.", ""))
            vae.to(torch.float32)
            images = _vae_decode(pipe, latents)
    return pipe.image_processor.postprocess(images, output_type="pil")


def _vae_decode(pipe, latents: torch.Tensor) -> torch.Tensor:
    vae = pipe.vae
    scaled = latents.to(device=execution_device(pipe), dtype=vae.dtype) / vae.config.scaling_factor
    return vae.decode(scaled, return_dict=False)[0]


def encode_images(pipe, images: list, width: int, height: int) -> torch.Tensor:
    """PIL images -> latents (scaled by the VAE factor) at width x height pixels, from the VAE's mean."""
    vae = pipe.vae
    pixels = pipe.image_processor.preprocess(images, height=height, width=width)
    with torch.no_grad():
        pixels = pixels.to(device=execution_device(pipe), dtype=vae.dtype)
        latents = vae.encode(pixels).latent_dist.mean  # the mean, not a sample: no extra randomness
    return latents * vae.config.scaling_factor


def is_inpaint_unet(pipe) -> bool:
    """True for inpainting checkpoints: the UNet also reads the mask and the masked image (9 channels)."""
    unet = getattr(pipe, "unet", None)
    return unet is not None and unet.config.in_channels == 9


def img2img_inputs(model, env, start, width: int, height: int) -> tuple[Any, dict[str, Any]]:
    """(pipeline, kwargs) for an img2img pass from `start` (PIL images or latents). An inpainting checkpoint
    goes through its inpaint pipeline with an all-repaint mask, A1111's conditioning for such models."""
    if not is_inpaint_unet(model.pipe):
        return derived_pipeline(model, "img2img", env), {"image": start}
    pipe = derived_pipeline(model, "inpaint", env)
    images = decode_latents(pipe, start) if isinstance(start, torch.Tensor) else list(start)
    white = Image.new("L", (width, height), 255)
    return pipe, {"image": images, "mask_image": [white] * len(images), "width": width, "height": height}
