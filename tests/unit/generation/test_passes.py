"""What runs inside a generation, watched from inside: the hires second pass, tiling during sampling and
decoding, SDXL AND pooled embeddings at the UNet, and what an interrupt hands back (A1111's behaviour)."""
from __future__ import annotations

import numpy as np
import torch

from modules.generation import hires as hr
from modules.generation.prompting import default_conditioning_factory
from modules.generation.txt2img import generate_txt2img
from modules.jobs.progress import JobContext
from modules.types import GenerationRequest

BASE = GenerationRequest(prompt="a red house", negative_prompt="blurry", width=64, height=64, steps=4,
                         sampler_name="Euler", seed=10)


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def unet_calls(pipe, record):
    """Register a pre-hook on the UNet calling record(sample) for every call; returns the handle."""
    return pipe.unet.register_forward_pre_hook(lambda module, args: record(args[0]))


def with_step_callback(on_step):
    """The real conditioning factory, plus on_step(pipe, step, tensors) after every sampling step."""
    real = default_conditioning_factory()

    def factory(pipe, prompts, negatives, **kwargs):
        cond = real(pipe, prompts, negatives, **kwargs)
        inner = cond.step_callback

        def callback(p, i, t, tensors):
            out = inner(p, i, t, tensors) if inner is not None else {}
            on_step(p, i, tensors)
            return out

        cond.step_callback = callback
        return cond

    return factory


# ---- hires fix ---------------------------------------------------------------------------------------

def test_hires_second_pass_runs_at_the_new_size_and_is_not_just_an_upscale(sd15):
    request = BASE.with_changes(steps=3, enable_hr=True, hr_scale=2.0, hr_upscaler="Lanczos",
                                denoising_strength=0.5, hr_second_pass_steps=4)
    sizes: list[tuple[int, int]] = []
    handle = unet_calls(sd15.pipe, lambda sample: sizes.append(tuple(sample.shape[-2:])))
    try:
        result = generate_txt2img(sd15, request)
    finally:
        handle.remove()
    # Euler: one (batched CFG) UNet call per step; latents are half the pixel size for the tiny VAE
    assert sizes == [(32, 32)] * 3 + [(64, 64)] * 4  # 3 first-pass steps, then the 4 hires steps (A1111)
    first_pass = generate_txt2img(sd15, BASE.with_changes(steps=3)).images[0]
    plan = hr.plan_hires(request)
    lanczos = hr.upscale_image(first_pass, plan)
    assert result.images[0].size == lanczos.size == (128, 128)
    assert np.abs(pixels(result.images[0]) - pixels(lanczos)).mean() > 2
    # ...and with nothing left to denoise the upscale is the result, so the comparison above is fair
    untouched = generate_txt2img(sd15, request.with_changes(denoising_strength=0.0)).images[0]
    assert np.abs(pixels(untouched) - pixels(lanczos)).max() <= 1


def test_latent_hires_pass_counts_its_steps_in_the_progress(sd15):
    job = JobContext("hires")
    request = BASE.with_changes(steps=2, enable_hr=True, hr_scale=1.5, hr_upscaler="Latent",
                                denoising_strength=0.75, hr_second_pass_steps=4)
    calls: list[int] = []
    handle = unet_calls(sd15.pipe, lambda sample: calls.append(sample.shape[-1]))
    try:
        generate_txt2img(sd15, request, progress=job)
    finally:
        handle.remove()
    assert calls == [32, 32, 48, 48, 48, 48]  # the hires pass runs its 4 steps whatever the strength
    assert job.snapshot().step == 6


# ---- tiling --------------------------------------------------------------------------------------------

def test_tiling_pads_circularly_while_sampling_and_while_decoding(sd15):
    unet_modes: list[str] = []
    vae_modes: list[str] = []
    unet_conv, vae_conv = sd15.pipe.unet.conv_in, sd15.pipe.vae.decoder.conv_in
    handles = [unet_conv.register_forward_pre_hook(lambda m, a: unet_modes.append(m.padding_mode)),
               vae_conv.register_forward_pre_hook(lambda m, a: vae_modes.append(m.padding_mode))]
    try:
        generate_txt2img(sd15, BASE.with_changes(tiling=True, steps=2))
        generate_txt2img(sd15, BASE.with_changes(tiling=False, steps=2))
    finally:
        for handle in handles:
            handle.remove()
    assert unet_modes == ["circular", "circular", "zeros", "zeros"]
    assert vae_modes == ["circular", "zeros"]  # A1111 tiles the VAE decode too: no seam in the pixels
    assert unet_conv.padding_mode == vae_conv.padding_mode == "zeros"


def test_img2img_tiling_covers_encode_sampling_and_decode(sd15, photo):
    from modules.generation.img2img import generate_img2img

    modes: dict[str, list[str]] = {"encoder": [], "unet": [], "decoder": []}
    vae, unet = sd15.pipe.vae, sd15.pipe.unet
    convs = {"encoder": vae.encoder.conv_in, "unet": unet.conv_in, "decoder": vae.decoder.conv_in}
    handles = [conv.register_forward_pre_hook(lambda m, a, name=name: modes[name].append(m.padding_mode))
               for name, conv in convs.items()]
    request = BASE.with_changes(mode="img2img", init_images=(photo,), denoising_strength=0.5, tiling=True)
    try:
        generate_img2img(sd15, request)
    finally:
        for handle in handles:
            handle.remove()
    assert modes == {"encoder": ["circular"], "unet": ["circular"] * 2, "decoder": ["circular"]}
    assert {c.padding_mode for c in convs.values()} == {"zeros"}


# ---- SDXL AND ------------------------------------------------------------------------------------------

def test_sdxl_and_gives_each_sub_prompt_its_own_pooled_embedding_at_the_unet(sdxl):
    from modules.prompts.encode import PromptEncoder

    encoder = PromptEncoder.from_pipe(sdxl.pipe)
    pooled = {text: encoder.encode(text).pooled for text in ("blurry", "a cat", " a dog")}
    rows: list[torch.Tensor] = []
    # The UNet's text_time embedding reads [pooled text | time ids] per row of the expanded AND batch.
    handle = sdxl.pipe.unet.add_embedding.register_forward_pre_hook(lambda m, a: rows.append(a[0].clone()))
    try:
        generate_txt2img(sdxl, BASE.with_changes(prompt="a cat AND a dog", steps=1))
    finally:
        handle.remove()
    assert len(rows) == 1 and rows[0].shape[0] == 3  # negative, "a cat", "a dog" in one UNet call
    width = pooled["a cat"].shape[-1]
    for row, text in zip(rows[0], ("blurry", "a cat", " a dog")):
        torch.testing.assert_close(row[:width], pooled[text].to(row))
    assert not torch.equal(rows[0][1, :width], rows[0][2, :width])


# ---- interrupt -----------------------------------------------------------------------------------------

def decoded_latents(pipe, record):
    """Hook the VAE's first decoder layer: record(latents it decodes, in the pipeline's scaling)."""
    factor = pipe.vae.config.scaling_factor
    return pipe.vae.post_quant_conv.register_forward_pre_hook(lambda m, a: record(a[0] * factor))


def test_interrupt_returns_the_denoised_image_of_the_step_it_stopped_at(sd15):
    """A1111 stops sampling and decodes the sampler's denoised prediction (x0) from the last step it ran.
    The reference comes from a full run's latents through Euler's own update rule:
    x[i+1] = x[i] + (sigma[i+1] - sigma[i]) * (x[i] - x0[i]) / sigma[i]  =>  x0[i] from x[i], x[i+1]."""
    stop = 1
    trace: dict[int, torch.Tensor] = {}
    sigmas: list[torch.Tensor] = []

    def record(pipe, step, tensors):
        trace[step] = tensors["latents"].detach().clone()
        sigmas[:] = [pipe.scheduler.sigmas.clone()]

    generate_txt2img(sd15, BASE, conditioning_factory=with_step_callback(record))
    s = sigmas[0]
    x_i, x_next = trace[stop - 1], trace[stop]
    x0 = x_i - s[stop] * (x_next - x_i) / (s[stop + 1] - s[stop])
    vae = sd15.pipe.vae
    with torch.no_grad():
        decoded = vae.decode(x0 / vae.config.scaling_factor, return_dict=False)[0]
    expected = sd15.pipe.image_processor.postprocess(decoded, output_type="pil")[0]

    job = JobContext("stop")

    def press(pipe, step, tensors):
        if step == stop:
            job.request_interrupt()

    seen: list[torch.Tensor] = []
    handle = decoded_latents(sd15.pipe, lambda z: seen.append(z.detach().clone()))
    try:
        result = generate_txt2img(sd15, BASE, progress=job, conditioning_factory=with_step_callback(press))
    finally:
        handle.remove()
    assert result.interrupted and job.snapshot().step == stop + 1
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], x0, atol=1e-4, rtol=1e-4)
    # not the noisy latent of that step (what a plain diffusers interrupt decodes)
    assert (seen[0] - x_next).abs().mean() > 100 * (seen[0] - x0).abs().mean()
    assert np.abs(pixels(result.images[0]) - pixels(expected)).max() <= 1


def test_skip_hands_back_the_denoised_image_too(sd15):
    job = JobContext("skip")

    def press(pipe, step, tensors):
        if step == 1:
            job.request_skip()

    skipped = generate_txt2img(sd15, BASE, progress=job, conditioning_factory=with_step_callback(press))
    interrupted_job = JobContext("stop")

    def stop(pipe, step, tensors):
        if step == 1:
            interrupted_job.request_interrupt()

    interrupted = generate_txt2img(sd15, BASE, progress=interrupted_job,
                                   conditioning_factory=with_step_callback(stop))
    assert not skipped.interrupted and interrupted.interrupted
    assert np.array_equal(pixels(skipped.images[0]), pixels(interrupted.images[0]))


def test_an_interrupt_on_the_last_step_keeps_the_finished_image(sd15):
    job = JobContext("late")

    def press(pipe, step, tensors):
        if step == BASE.steps - 1:
            job.request_interrupt()

    late = generate_txt2img(sd15, BASE, progress=job, conditioning_factory=with_step_callback(press))
    full = generate_txt2img(sd15, BASE)
    assert np.array_equal(pixels(late.images[0]), pixels(full.images[0]))
