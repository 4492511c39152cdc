"""The noise scope of one pipeline call: diffusers' randn_tensor answers this call's tokens from our
ImageRNG, the VAE samples its mean, everything else (other threads, other generators) is untouched."""
from __future__ import annotations

import threading

import torch
from diffusers import EulerAncestralDiscreteScheduler
from diffusers.models.autoencoders import vae as vae_module
from diffusers.pipelines.stable_diffusion import pipeline_stable_diffusion_img2img as img2img_module
from diffusers.schedulers import scheduling_euler_ancestral_discrete as euler_a_module

from modules.rng.diffusers_noise import noise_routed
from modules.rng.image_rng import ImageRNG
from modules.rng.sources import RngConfig

SHAPE = (2, 4, 6, 6)


class Img2ImgLike(img2img_module.StableDiffusionImg2ImgPipeline):
    """Only its class matters here (which module's randn_tensor it draws with); nothing is built."""

    def __init__(self):  # noqa: D107 - no components needed to find the modules
        pass


def test_tokens_draw_from_the_image_rng_and_the_vae_samples_its_mean():
    scheduler = EulerAncestralDiscreteScheduler()
    rng = ImageRNG(RngConfig("NV"), [5, 6])
    reference = ImageRNG(RngConfig("NV"), [5, 6])
    originals = (img2img_module.randn_tensor, euler_a_module.randn_tensor, vae_module.randn_tensor)
    with noise_routed(rng, Img2ImgLike(), scheduler) as tokens:
        first = img2img_module.randn_tensor(SHAPE, generator=tokens, dtype=torch.float16)
        step = euler_a_module.randn_tensor(SHAPE, generator=tokens)
        one = euler_a_module.randn_tensor((1, *SHAPE[1:]), generator=tokens[1])  # a list of one is one token
        posterior = vae_module.randn_tensor(SHAPE, generator=tokens)
        plain = euler_a_module.randn_tensor(SHAPE, generator=torch.Generator().manual_seed(5))
    assert first.dtype == torch.float16
    assert torch.equal(first, reference.draw(SHAPE[1:]).half())
    assert torch.equal(step, reference.draw(SHAPE[1:]))
    assert torch.equal(one[0], reference.images[1].draw(SHAPE[1:]))
    assert not posterior.any()
    assert torch.equal(plain, torch.randn(SHAPE, generator=torch.Generator().manual_seed(5)))
    assert (img2img_module.randn_tensor, euler_a_module.randn_tensor, vae_module.randn_tensor) == originals


def test_another_thread_during_the_scope_gets_diffusers_own_noise_and_the_patch_is_restored_on_error():
    seen = {}
    rng = ImageRNG(RngConfig("CPU"), [1])
    original = euler_a_module.randn_tensor
    try:
        with noise_routed(rng, Img2ImgLike(), EulerAncestralDiscreteScheduler()) as tokens:
            def other():
                # the same token objects seen from a thread outside the job: plain torch draws from them
                seen["x"] = euler_a_module.randn_tensor((1, 4, 2, 2), generator=tokens[0])
            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
            raise RuntimeError("pipeline failed")
    except RuntimeError:
        pass
    assert torch.equal(seen["x"], torch.randn((1, 4, 2, 2), generator=torch.Generator().manual_seed(1)))
    assert euler_a_module.randn_tensor is original


def test_no_rng_means_no_tokens_and_no_patch():
    original = euler_a_module.randn_tensor
    with noise_routed(None, Img2ImgLike(), EulerAncestralDiscreteScheduler()) as tokens:
        assert tokens is None and euler_a_module.randn_tensor is original


def test_every_sampler_that_draws_step_noise_is_routed():
    import inspect

    from modules.rng.diffusers_noise import NOISE, noise_modules
    from modules.samplers import SAMPLERS

    for sampler in SAMPLERS:
        cls = sampler.scheduler_cls
        if "randn_tensor" in inspect.getsource(cls):
            # the module that defines the class's step is one the scope swaps
            owner = next(c for c in cls.__mro__ if "step" in vars(c))
            assert noise_modules(cls).get(owner.__module__) == NOISE, sampler.name
