"""img2img: n_iter batches from request.init_images (image i starts from init_images[i % count]), with the
four A1111 resize modes and denoising strength; a mask (or transparency) makes it an inpaint job.

Noise comes from one stream per image seed (modules/rng: source, variation seed, seed resize, ENSD), handed
to diffusers for the pass, so a batch equals single runs; the VAE encodes the init images with its mean.
"""
from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from PIL import Image

from modules.extensions.hooks import BatchInfo
from modules.generation.hook_calls import begin_batch, end_batch, networks_active
from modules.generation.inpaint import run_inpaint_batch
from modules.generation.masks import mask_from_request, read_image, resize_image
from modules.generation.passes import decode_latents, encode_images, img2img_inputs, run_batches, run_pass
from modules.generation.prompting import ConditioningFactory, default_conditioning_factory, prepare
from modules.generation.runtime import GenerationEnv, seamless_tiling
from modules.generation.rng_noise import batch_rng, job_rng_config, pass_noise
from modules.generation.txt2img import (
    JobPlan,
    collect_images,
    image_prompts,
    image_seeds,
    new_result,
    plan_job,
)
from modules.generation.validation import validate_request
from modules.sampler_params import img2img_schedule
from modules.types import GenerationRequest, GenerationResult

LATENT_RESIZE = 3  # "Just resize (latent upscale)"


def generate_img2img(model, request: GenerationRequest, *, progress=None,
                     conditioning_factory: ConditioningFactory | None = None,
                     env: GenerationEnv | None = None) -> GenerationResult:
    """Generate request.n_iter x request.batch_size images of width x height pixels from init images."""
    env = env or GenerationEnv()
    factory = conditioning_factory or default_conditioning_factory()

    # 1. Validate; read the images and the mask (errors name init_images / mask).
    validate_request(request)
    inits = [read_image(image, "init_images") for image in request.init_images]
    mask = mask_from_request(request.mask, inits[0], bool(request.inpainting_mask_invert))

    # 2. Plan: prompts, sampler, clip skip. img2img has no hires pass or refiner (as in A1111's UI).
    plan = plan_job(model, request.with_changes(mask=mask, enable_hr=False, refiner_checkpoint=""), env)
    # diffusers runs int(steps * strength) steps from the noised image, as A1111 does by default; exactly
    # `steps` with the img2img_fix_steps setting.
    total, strength, run_steps = img2img_schedule(request.steps, request.denoising_strength,
                                                  bool(env.setting("img2img_fix_steps")))
    plan.first = replace(plan.first, steps=run_steps)
    plan.img2img_schedule = (total, strength)
    result = new_result(plan)

    # 3. Prompts and seeds of every image: image i gets seed + i (or what a script decided per image).
    total = request.total_images
    prompts, negatives = image_prompts(plan, total)
    seeds, subseeds = image_seeds(request, total)
    if progress is not None:
        progress.set_total(max(plan.first.steps, 1), request.n_iter)

    # 4. The batches.
    def run_batch(index: int, part: slice) -> None:
        batch_inits = [inits[i % len(inits)] for i in range(part.start, part.stop)]
        batch = begin_batch(env, index, prompts[part], negatives[part], seeds[part], subseeds[part])
        # Tiling covers the VAE's encode and decode as well as sampling (as A1111).
        with seamless_tiling(model.pipe, request.tiling), networks_active(env, model.pipe, batch):
            if mask is not None:
                images, cond = run_inpaint_batch(model, plan, batch_inits, mask, batch, factory, env, progress)
            else:
                images, cond = run_img2img_batch(model, plan, batch_inits, batch, factory, env, progress)
        images = end_batch(env, batch, images)
        collect_images(result, model, plan, images, batch, cond, env)

    result.interrupted = run_batches(request.n_iter, request.batch_size, progress, run_batch)
    return result


def run_img2img_batch(model, plan: JobPlan, inits: list[Image.Image], batch: BatchInfo,
                      factory: ConditioningFactory, env: GenerationEnv, progress):
    """One plain img2img batch; returns (images, conditioning)."""
    request, seeds = plan.request, batch.seeds
    width, height = request.width, request.height

    # a. The start images at the requested size (latent mode: encode, then resize the latents).
    resized = [resize_image(image.convert("RGB"), width, height, request.resize_mode) for image in inits]
    if plan.first.steps < 1:  # denoising strength ~0: nothing to denoise, the resized image is the result
        return resized, None
    start = resized
    if request.resize_mode == LATENT_RESIZE:
        start = latent_resized(model.pipe, inits, width, height)
    pipe, inputs = img2img_inputs(model, env, start, width, height)

    # b. Conditioning and the pass.
    cond = prepare(factory, pipe, batch.prompts, batch.negative_prompts, env,
                   steps=plan.first.steps, clip_skip=plan.clip_skip)
    rng = batch_rng(job_rng_config(env, pipe), request, seeds, batch.subseeds, pipe.vae_scale_factor)
    with pass_noise(rng, pipe, plan.first) as noise:
        output = run_pass(pipe, cond, replace(plan.first, seed=list(seeds)), progress, env=env,
                          strength=plan.img2img_schedule[1], num_inference_steps=plan.img2img_schedule[0],
                          guidance_scale=request.cfg_scale, eta=plan.eta, output_type="latent",
                          **inputs, **noise)
    return decode_latents(pipe, output.images), cond


def latent_resized(pipe, inits: list[Image.Image], width: int, height: int):
    """Resize mode 3: encode each image at its own size (multiple of the VAE factor), resize the latents."""
    factor = pipe.vae_scale_factor
    latents = []
    for image in inits:
        own_w = max(factor, image.width // factor * factor)
        own_h = max(factor, image.height // factor * factor)
        encoded = encode_images(pipe, [image.convert("RGB")], own_w, own_h)
        latents.append(F.interpolate(encoded.float(), size=(height // factor, width // factor),
                                     mode="bilinear").to(encoded.dtype))
    return torch.cat(latents)
