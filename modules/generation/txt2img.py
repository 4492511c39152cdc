"""txt2img: n_iter batches of batch_size images from text, with hires fix and the SDXL refiner.

Reads like a diffusers `__call__`: validate, prompts, sampler, seeds, then per batch: noise ->
conditioning -> first pass -> refiner -> hires pass -> infotexts. Stopping keeps the images made so far.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import torch
from PIL import Image

from modules.extensions.hooks import BatchInfo, ImageInfo
from modules.generation import hires as hr
from modules.generation.hook_calls import begin_batch, end_batch, extra_params, image_hook, networks_active
from modules.generation.guidance import resolve_uncond_skip
from modules.generation.info import image_infotext
from modules.generation.passes import (
    PassSpec,
    decode_latents,
    img2img_inputs,
    is_inpaint_unet,
    run_batches,
    run_pass,
    stop_requested,
)
from modules.generation.prompting import (
    ConditioningFactory,
    default_conditioning_factory,
    job_prompts,
    prepare,
    strip_comments,
)
from modules.generation.refiner import Refiner, load_refiner
from modules.generation.runtime import GenerationEnv, derived_pipeline, seamless_tiling
from modules.generation.rng_noise import batch_rng, first_noise, job_rng_config, pass_noise, rng_infotext
from modules.generation.seeds import job_seeds
from modules.generation.validation import validate_request
from modules.performance import tome
from modules.sampler_params import model_sigma_range, resolve_sampler_params
from modules.samplers import few_step_warning, model_scheduler_config, resolve_sampler
from modules.types import GenerationRequest, GenerationResult, UserInputError


@dataclass
class JobPlan:
    """What every batch of a job shares: prompts, passes, hires size, refiner, clip skip, eta."""

    request: GenerationRequest
    prompt: str
    negative: str
    first: PassSpec
    clip_skip: int
    eta: float
    hires: hr.HiresPlan | None = None
    hires_pass: PassSpec | None = None
    refiner: Refiner | None = None
    warnings: list[str] = field(default_factory=list)
    info_request: GenerationRequest | None = None  # the request as it runs: resolved sampler, clip skip
    # img2img: (num_inference_steps, strength) handed to diffusers (sampler_params.img2img_schedule)
    img2img_schedule: tuple[int, float] = (0, 0.0)


def generate_txt2img(model, request: GenerationRequest, *, progress=None,
                     conditioning_factory: ConditioningFactory | None = None,
                     env: GenerationEnv | None = None) -> GenerationResult:
    """Generate request.n_iter x request.batch_size images of width x height pixels (multiples of 8)."""
    env = env or GenerationEnv()
    factory = conditioning_factory or default_conditioning_factory()

    # 1. Validate everything the user typed before touching the model.
    validate_request(request)

    # 2. Plan the job: prompts (styles, comments), samplers of both passes, hires size, refiner.
    plan = plan_job(model, request, env)
    result = new_result(plan)

    # 3. Prompts and seeds of every image: image i gets seed + i (and subseed + i), unless a script
    #    decided them per image (request.all_prompts / all_seeds).
    total = request.total_images
    prompts, negatives = image_prompts(plan, total)
    seeds, subseeds = image_seeds(request, total)
    if progress is not None:
        hires_steps = plan.hires_pass.steps if plan.hires_pass else 0
        progress.set_total(plan.first.steps + hires_steps, request.n_iter)

    # 4. The batches. Skip ends one batch, interrupt the job; both keep the images already made.
    # An inpainting checkpoint generates from text through its inpaint pipeline, everything masked.
    pipe = derived_pipeline(model, "inpaint" if is_inpaint_unet(model.pipe) else "txt2img", env)

    def run_batch(index: int, part: slice) -> None:
        batch = begin_batch(env, index, prompts[part], negatives[part], seeds[part], subseeds[part])
        # Tiling covers the whole batch, VAE decodes between and after the passes too (as A1111).
        with seamless_tiling(model.pipe, request.tiling), networks_active(env, model.pipe, batch):
            images, cond = run_txt2img_batch(model, pipe, plan, batch, factory, env, progress)
        images = end_batch(env, batch, images)
        collect_images(result, model, plan, images, batch, cond, env)

    try:
        result.interrupted = run_batches(request.n_iter, request.batch_size, progress, run_batch)
    finally:
        if plan.refiner is not None:
            plan.refiner.close()
    return result


def plan_job(model, request: GenerationRequest, env: GenerationEnv) -> JobPlan:
    """Resolve everything that is the same for each batch; raises UserInputError naming the bad field."""
    prompt, negative = job_prompts(request, env)
    sampler, schedule, warnings = resolve_sampler(request.sampler_name, request.scheduler)
    if request.mode == "txt2img" and (low := few_step_warning(model_scheduler_config(model.pipe.scheduler),
                                                              sampler, schedule, request.steps)):
        warnings.append(low)  # e.g. 1 step of Euler a on SD's "leading" spacing starts at timestep 1
    clip_skip = request.clip_skip if request.clip_skip > 1 else int(env.setting("CLIP_stop_at_last_layers"))
    # DDIM reads eta at call time; diffusers' ancestral samplers have it fixed at 1 (A1111's default too).
    eta = request.eta if request.eta is not None else float(env.setting("eta_ddim"))
    # Sampler parameters (eta, sigma churn, schedule sigmas, img2img noise): they write their own infotext.
    sigmas = model_sigma_range(model.pipe.scheduler)
    params = resolve_sampler_params(sampler, schedule, request, env.setting, model_sigmas=sigmas,
                                    kind=request.mode)
    guidance = resolve_uncond_skip(request, env.setting)  # Skip Early CFG / NGMS, shared by every pass
    first = PassSpec(sampler, schedule, seed=0, steps=request.steps, tiling=request.tiling,
                     latent_family=model.family, params=params, guidance=guidance,
                     token_merging_ratio=tome.pass_ratio(env.setting, request.mode))
    info_request = request.with_changes(sampler_name=sampler.name, clip_skip=clip_skip, eta=None,
                                        initial_noise_multiplier=params.noise_multiplier)
    plan = JobPlan(request, prompt, negative, first, clip_skip, eta, warnings=[*warnings, *params.warnings],
                   info_request=info_request)
    if request.enable_hr:
        plan.hires = hr.plan_hires(request, env.upscalers)
        hr_sampler, hr_schedule, hr_warnings = hr.resolve_hires_sampler(request, sampler, schedule)
        hr_params = resolve_sampler_params(hr_sampler, hr_schedule, request, env.setting, model_sigmas=sigmas,
                                           kind="hires")
        plan.warnings += [*hr_warnings, *(w for w in hr_params.warnings if w not in plan.warnings)]
        # The hires pass runs exactly its steps (A1111): hr.plan_hires stretched the schedule for it.
        plan.hires_pass = PassSpec(hr_sampler, hr_schedule, seed=0, steps=plan.hires.steps,
                                   step_offset=request.steps,
                                   tiling=request.tiling, latent_family=model.family, params=hr_params,
                                   guidance=guidance,
                                   token_merging_ratio=tome.pass_ratio(env.setting, "hires"))
    if request.refiner_checkpoint:
        plan.refiner = load_refiner(request, model, env)
    return plan


def image_prompts(plan: JobPlan, total: int) -> tuple[list[str], list[str]]:
    """Every image's (prompt, negative prompt): the script-given lists, else the job's prompts."""
    request = plan.request
    prompts = list(request.all_prompts) or [plan.prompt] * total
    negatives = list(request.all_negative_prompts) or [plan.negative] * total
    if len(prompts) < total or len(negatives) < total:
        raise UserInputError(f"all_prompts has {len(prompts)} and all_negative_prompts {len(negatives)} "
                             f"entries for {total} images", field="all_prompts")
    return prompts[:total], negatives[:total]


def image_seeds(request: GenerationRequest, total: int) -> tuple[list[int], list[int]]:
    seeds = list(request.all_seeds) or job_seeds(request.seed, total)
    subseeds = list(request.all_subseeds) or job_seeds(request.subseed, total)
    if len(seeds) < total or len(subseeds) < total:
        raise UserInputError(f"all_seeds has {len(seeds)} entries for {total} images", field="all_seeds")
    return seeds[:total], subseeds[:total]


def run_txt2img_batch(model, pipe, plan: JobPlan, batch: BatchInfo, factory: ConditioningFactory,
                      env: GenerationEnv, progress) -> tuple[list[Image.Image], Any]:
    """One batch through all passes; returns its images and the first pass's conditioning (for infotext)."""
    request, seeds, subseeds = plan.request, batch.seeds, batch.subseeds
    count = len(seeds)
    # a. Noise per image from its own seed, so a batch equals the same seeds generated one by one; the
    # setting randn_source says where it comes from (modules/rng), step noise continues each image's stream.
    factor = pipe.vae_scale_factor  # 8 for real SD VAEs
    shape = (pipe.vae.config.latent_channels, request.height // factor, request.width // factor)
    rng = batch_rng(job_rng_config(env, pipe), request, seeds, subseeds, factor)
    latents = first_noise(rng, pipe, shape)

    # b. Conditioning for this batch's prompts.
    cond = prepare(factory, pipe, batch.prompts, batch.negative_prompts, env,
                   steps=request.steps, clip_skip=plan.clip_skip)

    # c. First pass. It always hands over latents: the next stage or our own decode (which retries a
    # float16 VAE that gives NaNs in float32) turns them into pixels.
    kwargs = {"latents": latents, "eta": plan.eta,
              "num_inference_steps": request.steps, "guidance_scale": request.cfg_scale,
              "width": request.width, "height": request.height,
              "output_type": "latent"}
    kwargs.update(inpaint_model_inputs(pipe, request, count))
    if plan.refiner is not None:
        kwargs["denoising_end"] = plan.refiner.switch_at
    with pass_noise(rng, pipe, plan.first) as noise:
        output = run_pass(pipe, cond, replace(plan.first, seed=list(seeds)), progress, env=env, **kwargs,
                          **noise).images

    # d. Refiner: the rest of the schedule on the base's latents (its step noise continues the streams).
    if plan.refiner is not None and not stop_requested(progress):
        output = run_refiner(plan, output, batch, factory, env, progress, rng)

    # e. Hires fix: upscale, then img2img at the new size.
    if plan.hires is not None and not stop_requested(progress):
        output = run_hires(model, plan, output, batch, factory, env, progress, pipe)
    return as_images(pipe, output), cond


def run_refiner(plan: JobPlan, latents, batch: BatchInfo, factory, env, progress, rng=None):
    """The refiner's share of the schedule (denoising_start = switch point) on the base's latents."""
    request, refiner, seeds = plan.request, plan.refiner, batch.seeds
    cond = prepare(factory, refiner.pipe, batch.prompts, batch.negative_prompts, env,
                   steps=request.steps, clip_skip=plan.clip_skip)
    spec = replace(plan.first, seed=list(seeds), step_offset=int(request.steps * refiner.switch_at),
                   steps=request.steps - int(request.steps * refiner.switch_at))
    rng = rng or batch_rng(job_rng_config(env, refiner.pipe), request, seeds, batch.subseeds,
                           refiner.pipe.vae_scale_factor)
    with pass_noise(rng, refiner.pipe, spec) as noise:
        return run_pass(refiner.pipe, cond, spec, progress, env=env, image=latents,
                        denoising_start=refiner.switch_at,
                        num_inference_steps=request.steps, guidance_scale=request.cfg_scale, eta=plan.eta,
                        output_type="latent", **noise).images


def run_hires(model, plan: JobPlan, output, batch: BatchInfo, factory, env, progress, pipe):
    """Upscale the first pass (latent or pixel upscaler) and run img2img at the hires size."""
    request, size, seeds = plan.request, plan.hires, batch.seeds
    if size.latent:
        upscaled = hr.upscale_latents(output, size, pipe.vae_scale_factor)
    else:
        upscaled = [hr.upscale_image(image, size, env.upscalers) for image in as_images(pipe, output)]
    if plan.hires_pass.steps < 1:  # denoising strength 0: the upscale is the result, as in A1111
        return upscaled
    img2img, inputs = img2img_inputs(model, env, upscaled, size.width, size.height)
    # The hires prompt, when given, replaces every image's prompt for this pass (as A1111's hr_prompt).
    hr_prompt, hr_negative = strip_comments(request.hr_prompt), strip_comments(request.hr_negative_prompt)
    prompts = [hr_prompt] * len(seeds) if hr_prompt else list(batch.prompts)
    negatives = [hr_negative] * len(seeds) if hr_negative else list(batch.negative_prompts)
    # Prompt schedules ([a:b:0.5]) run over the hires steps in this pass, as in A1111.
    cond = prepare(factory, img2img, prompts, negatives, env, steps=request.steps, clip_skip=plan.clip_skip,
                   hires_steps=plan.hires_pass.steps)
    cfg = request.hr_cfg_scale if request.hr_cfg_scale is not None else request.cfg_scale
    # A new noise stream per image at the hires size, with the variation seed and seed resize (as A1111).
    rng = batch_rng(job_rng_config(env, img2img), request, seeds, batch.subseeds, img2img.vae_scale_factor)
    with pass_noise(rng, img2img, plan.hires_pass) as noise:
        return run_pass(img2img, cond, replace(plan.hires_pass, seed=list(seeds)), progress, env=env,
                        strength=size.strength, num_inference_steps=size.num_inference_steps,
                        guidance_scale=cfg, eta=plan.eta, output_type="latent", **inputs, **noise).images


def as_images(pipe, output) -> list[Image.Image]:
    """Pipeline output as PIL images, decoding latents when a pass stopped before its last step."""
    return decode_latents(pipe, output) if isinstance(output, torch.Tensor) else list(output)


def inpaint_model_inputs(pipe, request: GenerationRequest, count: int) -> dict[str, Any]:
    """txt2img on an inpainting checkpoint: everything masked over a gray image, as A1111 conditions it."""
    if not is_inpaint_unet(pipe):
        return {}
    gray = Image.new("RGB", (request.width, request.height), (127, 127, 127))
    white = Image.new("L", (request.width, request.height), 255)
    return {"image": [gray] * count, "mask_image": [white] * count, "strength": 1.0}


def sampler_infotext(plan: JobPlan) -> dict[str, Any]:
    """Infotext keys of the sampler parameters that applied: the first pass's, then the hires pass's (A1111
    collects both passes' into one extra_generation_params)."""
    out: dict[str, Any] = {}
    for spec in (plan.first, plan.hires_pass):
        if spec is not None and spec.params is not None:
            out.update(spec.params.infotext)
    if plan.first.guidance is not None:  # the rules that fired in any pass so far
        out.update(plan.first.guidance.infotext())
    hires = plan.hires_pass.token_merging_ratio if plan.hires_pass is not None else None
    out.update(tome.infotext(plan.first.token_merging_ratio, hires))
    return out


def new_result(plan: JobPlan) -> GenerationResult:
    """An empty job result stamped now (A1111's job_timestamp format), carrying the plan's warnings."""
    stamp = datetime.now().strftime("%Y%m%d%H%M%S")
    return GenerationResult(job_timestamp=stamp, warnings=list(plan.warnings))


def collect_images(result: GenerationResult, model, plan: JobPlan, images, batch: BatchInfo, cond,
                   env: GenerationEnv | None = None) -> None:
    """Append a batch's images with their prompts, seeds and infotexts to the job result; extensions'
    after_image hooks see each image first, their info.params go into every infotext."""
    extra = {**sampler_infotext(plan), **dict(getattr(cond, "extra_params", None) or {}), **extra_params(env)}
    if env is not None:
        extra.update(rng_infotext(job_rng_config(env, model.pipe), plan.first.sampler, plan.first.params))
    for warning in getattr(cond, "warnings", None) or ():
        if warning not in result.warnings:
            result.warnings.append(warning)
    rows = zip(images, batch.prompts, batch.negative_prompts, batch.seeds, batch.subseeds)
    for image, prompt, negative, seed, subseed in rows:
        info = ImageInfo(len(result.images), seed, prompt, negative, batch.index)
        result.images.append(image_hook(env, image, info))
        result.all_prompts.append(prompt)
        result.all_negative_prompts.append(negative)
        result.all_seeds.append(seed)
        result.all_subseeds.append(subseed)
        text = image_infotext(plan.info_request, model, prompt=prompt, negative=negative, seed=seed,
                              subseed=subseed, schedule=plan.first.schedule.name, extra=extra)
        result.infotexts.append(text)
    result.extra["extra_generation_params"] = extra
