"""The noise source, ENSD, variation seed and seed resize through whole jobs on the tiny SD1.5 pipeline:
txt2img, img2img, inpaint and hires fix, batch == singles for every source, infotext round trip."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from modules.generation.img2img import generate_img2img
from modules.generation.runtime import GenerationEnv
from modules.generation.txt2img import generate_txt2img
from modules.images.infotext import infotext_to_request_fields, parse_infotext
from modules.settings import DEFAULT_SPECS
from modules.types import GenerationRequest

DEFAULTS = {spec.key: spec.default for spec in DEFAULT_SPECS}
TXT = GenerationRequest(prompt="a red house", width=64, height=64, steps=2, sampler_name="Euler a", seed=10)


class Overlay:
    """Settings for one job: these values over the defaults (what the service's per-job overlay gives)."""

    def __init__(self, **values):
        self.values = values

    def get(self, key):
        return self.values.get(key, DEFAULTS[key])


def env(source="GPU", ensd=0) -> GenerationEnv:
    return GenerationEnv(settings=Overlay(randn_source=source, eta_noise_seed_delta=ensd))


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def same(a, b) -> bool:
    return np.array_equal(pixels(a), pixels(b))


def near(a, b) -> bool:
    # batched convolutions may round differently in the last bit: a level or two of 255 at most
    return np.abs(pixels(a) - pixels(b)).max() <= 2


@pytest.fixture(scope="module")
def img2img_base(photo) -> GenerationRequest:
    return GenerationRequest(mode="img2img", prompt="a tiled floor", init_images=(photo,), width=64,
                             height=64, steps=4, denoising_strength=0.6, sampler_name="Euler", seed=3)


@pytest.fixture(scope="module")
def hole(photo) -> Image.Image:
    mask = Image.new("L", photo.size, 0)
    mask.paste(255, (24, 12, 72, 52))
    return mask


@pytest.mark.parametrize("source", ["CPU", "NV"])  # GPU is CPU here (the next test checks it)
def test_a_batch_of_three_equals_three_singles_with_an_ancestral_sampler(sd15, source):
    request = TXT.with_changes(batch_size=3, subseed=40, subseed_strength=0.2)
    batch = generate_txt2img(sd15, request, env=env(source))
    for i, image in enumerate(batch.images):
        alone = generate_txt2img(sd15, request.with_changes(batch_size=1, seed=10 + i, subseed=40 + i),
                                 env=env(source))
        assert near(image, alone.images[0]), i


def test_gpu_is_cpu_on_a_cpu_machine_and_nv_and_ensd_change_the_noise(sd15):
    gpu, cpu = generate_txt2img(sd15, TXT, env=env("GPU")), generate_txt2img(sd15, TXT, env=env("CPU"))
    nv = generate_txt2img(sd15, TXT, env=env("NV"))
    assert same(gpu.images[0], cpu.images[0])
    assert not near(nv.images[0], cpu.images[0])
    # ENSD reseeds the step noise only: Euler a changes, plain Euler (no step noise) does not
    assert not near(generate_txt2img(sd15, TXT, env=env("NV", 31337)).images[0], nv.images[0])
    euler = TXT.with_changes(sampler_name="Euler")
    assert same(generate_txt2img(sd15, euler, env=env("CPU", 31337)).images[0],
                generate_txt2img(sd15, euler, env=env("CPU")).images[0])


def test_infotext_writes_rng_and_ensd_only_when_not_default_and_parsing_restores_them(sd15):
    assert "RNG:" not in generate_txt2img(sd15, TXT, env=env("GPU")).infotexts[0]
    text = generate_txt2img(sd15, TXT, env=env("NV", 31337)).infotexts[0]
    assert "RNG: NV" in text and "ENSD: 31337" in text
    fields = infotext_to_request_fields(parse_infotext(text))
    assert fields["override_settings"]["randn_source"] == "NV"
    assert fields["override_settings"]["eta_noise_seed_delta"] == 31337
    # ENSD does nothing for a sampler without step noise, so A1111 leaves it out there
    plain = generate_txt2img(sd15, TXT.with_changes(sampler_name="Euler"), env=env("CPU", 31337)).infotexts[0]
    assert "ENSD" not in plain and "RNG: CPU" in plain
    # a text without RNG is A1111's default, GPU
    assert infotext_to_request_fields(parse_infotext("x\nSteps: 3, Seed: 1"))["override_settings"][
        "randn_source"] == "GPU"


@pytest.mark.parametrize("source", ["CPU", "NV"])
def test_img2img_variation_strength_0_is_none_and_1_is_the_subseeds_image(sd15, img2img_base, source):
    plain = generate_img2img(sd15, img2img_base, env=env(source)).images[0]
    varied = img2img_base.with_changes(subseed=77)
    zero = generate_img2img(sd15, varied.with_changes(subseed_strength=0.0), env=env(source)).images[0]
    one = generate_img2img(sd15, varied.with_changes(subseed_strength=1.0), env=env(source)).images[0]
    half = generate_img2img(sd15, varied.with_changes(subseed_strength=0.5), env=env(source)).images[0]
    subseeds_own = generate_img2img(sd15, img2img_base.with_changes(seed=77), env=env(source)).images[0]
    assert same(zero, plain)
    assert same(one, subseeds_own) and not near(one, plain)
    assert not near(half, plain) and not near(half, one)


def test_inpaint_variation_strength_1_is_the_subseeds_image(sd15, img2img_base, hole):
    request = img2img_base.with_changes(mask=hole, denoising_strength=0.9)
    plain = generate_img2img(sd15, request).images[0]
    one = generate_img2img(sd15, request.with_changes(subseed=77, subseed_strength=1.0)).images[0]
    assert same(one, generate_img2img(sd15, request.with_changes(seed=77)).images[0])
    assert not near(one, plain)


def test_img2img_seed_resize_uses_the_old_sizes_noise_and_batch_equals_singles(sd15, img2img_base):
    plain = generate_img2img(sd15, img2img_base).images[0]
    own_size = generate_img2img(sd15, img2img_base.with_changes(seed_resize_from_w=64, seed_resize_from_h=64))
    resized = generate_img2img(sd15, img2img_base.with_changes(seed_resize_from_w=96, seed_resize_from_h=128))
    assert same(own_size.images[0], plain)
    assert not near(resized.images[0], plain)
    assert "Seed resize from: 96x128" in resized.infotexts[0]
    request = img2img_base.with_changes(sampler_name="Euler a", batch_size=2, subseed=5, subseed_strength=0.4)
    batch = generate_img2img(sd15, request, env=env("NV"))
    for i, image in enumerate(batch.images):
        alone = generate_img2img(sd15, request.with_changes(batch_size=1, seed=3 + i, subseed=5 + i),
                                 env=env("NV"))
        assert near(image, alone.images[0]), i


def test_hires_pass_noise_takes_the_variation_seed_too(sd15):
    request = TXT.with_changes(sampler_name="Euler", enable_hr=True, hr_scale=1.5, hr_upscaler="Latent",
                               denoising_strength=0.6, steps=2)
    one = generate_txt2img(sd15, request.with_changes(subseed=77, subseed_strength=1.0)).images[0]
    assert same(one, generate_txt2img(sd15, request.with_changes(seed=77)).images[0])


def test_dpmpp_sde_brownian_noise_is_seeded_per_image_so_a_batch_equals_singles(sd15):
    # A1111 seeds the Brownian tree with the batch's image seeds; one tree for the whole batch would tie
    # image 2's noise to image 1's seed.
    request = TXT.with_changes(sampler_name="DPM++ SDE", batch_size=2)
    batch = generate_txt2img(sd15, request)
    for i, image in enumerate(batch.images):
        alone = generate_txt2img(sd15, request.with_changes(batch_size=1, seed=10 + i))
        assert near(image, alone.images[0]), i


def test_sdxl_img2img_takes_the_nv_source_and_the_variation_seed(sdxl, img2img_base):
    request = img2img_base.with_changes(prompt="a tiled floor", steps=3)
    one = generate_img2img(sdxl, request.with_changes(subseed=77, subseed_strength=1.0), env=env("NV")).images[0]
    assert same(one, generate_img2img(sdxl, request.with_changes(seed=77), env=env("NV")).images[0])
    assert not near(one, generate_img2img(sdxl, request, env=env("NV")).images[0])


def test_ensd_follows_the_effective_eta_so_eta_ancestral_0_writes_none(sd15):
    # A1111 writes ENSD only when the sampler adds step noise: Euler a with the setting eta_ancestral 0 adds
    # none (the request's eta is unset, so the setting is the eta that runs)
    settings = Overlay(randn_source="CPU", eta_noise_seed_delta=31337, eta_ancestral=0.0)
    text = generate_txt2img(sd15, TXT, env=GenerationEnv(settings=settings)).infotexts[0]
    assert "ENSD" not in text and "Eta: 0" in text
    # a request eta wins over the setting, both ways
    noisy = generate_txt2img(sd15, TXT.with_changes(eta=0.5), env=GenerationEnv(settings=settings)).infotexts[0]
    assert "ENSD: 31337" in noisy
    quiet = generate_txt2img(sd15, TXT.with_changes(eta=0.0), env=env("CPU", 31337)).infotexts[0]
    assert "ENSD" not in quiet
