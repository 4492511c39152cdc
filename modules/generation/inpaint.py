"""Inpaint one img2img batch: region (whole picture or only masked + padding), masked content, sampling,
and the composite that keeps every pixel outside the mask the source's.

Every model runs diffusers' inpaint pipeline: a 9-channel inpainting UNet reads the mask and masked
image; a normal 4-channel UNet gets the known area re-imposed on the latents after every step (what
A1111 does for normal models). Masked content "fill" is done on pixels before encoding; "latent noise"
and "latent nothing" replace the masked part of the encoded image before noise is added.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from modules.generation import masks
from modules.generation.passes import decode_latents, run_pass
from modules.generation.prompting import prepare
from modules.generation.runtime import derived_pipeline
from modules.generation.rng_noise import batch_rng, job_rng_config, pass_noise

FILL, ORIGINAL, LATENT_NOISE, LATENT_NOTHING = range(4)  # request.inpainting_fill, A1111's order


def run_inpaint_batch(model, plan, inits: list[Image.Image], mask: Image.Image, batch, factory,
                      env, progress) -> tuple[list[Image.Image], object]:
    """One inpaint batch (a BatchInfo: prompts and seeds per image); returns (images, conditioning).
    `mask` is 'L', white = repaint, init-sized."""
    request, seeds = plan.request, batch.seeds
    count = len(seeds)
    width, height = request.width, request.height
    blur_x = request.mask_blur if request.mask_blur_x is None else request.mask_blur_x
    blur_y = request.mask_blur if request.mask_blur_y is None else request.mask_blur_y
    soft = masks.blur_mask(mask, blur_x, blur_y)

    # 1. Region: only masked = the mask's box plus padding at the requested aspect, sampled at width x height.
    box = masks.mask_box(mask, request.inpaint_full_res_padding) if request.inpaint_full_res else None
    if box is not None:
        box = masks.expand_to_aspect(box, width, height, mask.size)
        sources = [img.convert("RGB").crop(box).resize((width, height), Image.Resampling.LANCZOS)
                   for img in inits]
        region_mask = soft.crop(box).resize((width, height), Image.Resampling.LANCZOS)
    else:
        sources = [masks.resize_image(i.convert("RGB"), width, height, request.resize_mode) for i in inits]
        region_mask = masks.resize_image(soft, width, height, request.resize_mode)

    # 2. Masked content "fill": colours from around the hole instead of what was there.
    starts = sources
    if request.inpainting_fill == FILL:
        starts = [masks.fill_masked(source, region_mask) for source in sources]

    # 3. Sample. Denoising strength ~0 leaves nothing to do but the composite.
    cond = None
    generated = starts
    if plan.first.steps >= 1:
        pipe = derived_pipeline(model, "inpaint", env)
        cond = prepare(factory, pipe, batch.prompts, batch.negative_prompts, env,
                       steps=plan.first.steps, clip_skip=plan.clip_skip)
        # The start noise (variation seed, seed resize) and step noise from the image streams (modules/rng).
        rng = batch_rng(job_rng_config(env, pipe), request, seeds, batch.subseeds, pipe.vae_scale_factor)
        with masked_content_latents(pipe, request.inpainting_fill, region_mask), \
                pass_noise(rng, pipe, plan.first) as noise:
            generated = run_pass(pipe, cond, replace(plan.first, seed=list(seeds)), progress, env=env,
                                 image=starts,
                                 mask_image=[region_mask] * count, strength=plan.img2img_schedule[1],
                                 num_inference_steps=plan.img2img_schedule[0],
                                 guidance_scale=request.cfg_scale,
                                 eta=plan.eta, width=width, height=height,
                                 output_type="latent", **noise).images
            generated = decode_latents(pipe, generated)

    # 4. Composite: outside the (blurred) mask every pixel is the source's.
    if box is not None:
        return [masks.paste_region(init, out, box, soft) for init, out in zip(inits, generated)], cond
    return [masks.composite(src, out, region_mask) for src, out in zip(sources, generated)], cond


def latent_mask(mask: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """(1, 1, h, w) tensor, 1 = repaint, at latent size (h, w), rounded to 0/1 as A1111 does for fills."""
    pixels = torch.from_numpy(np.asarray(mask.convert("L"), dtype=np.float32) / 255.0)[None, None]
    return F.interpolate(pixels, size=size, mode="area").round()


@contextlib.contextmanager
def masked_content_latents(pipe, fill: int, mask: Image.Image) -> Iterator[None]:
    """For "latent noise"/"latent nothing": wrap this pipeline's prepare_latents for one call so the masked
    part of the encoded image is noise/zeros before the start noise is added; restored on exit."""
    if fill not in (LATENT_NOISE, LATENT_NOTHING):
        yield
        return
    original = pipe.prepare_latents

    def prepare_latents(*args, **kwargs):
        wants_image_latents = kwargs.get("return_image_latents", False)
        latents, noise, image_latents = original(*args, **{**kwargs, "return_image_latents": True})
        if not kwargs.get("is_strength_max", True) and kwargs.get("add_noise", True):
            m = latent_mask(mask, tuple(image_latents.shape[-2:]))
            m = m.to(image_latents.device, image_latents.dtype)
            # A1111's "latent noise" draws from the image seeds, i.e. the same noise the sampler adds.
            filler = noise if fill == LATENT_NOISE else torch.zeros_like(image_latents)
            start = image_latents * (1 - m) + filler * m
            latents = pipe.scheduler.add_noise(start, noise, kwargs["timestep"])
        return (latents, noise, image_latents) if wants_image_latents else (latents, noise)

    pipe.prepare_latents = prepare_latents  # instance attribute: the class and other pipelines are untouched
    try:
        yield
    finally:
        del pipe.prepare_latents
