"""txt2img on the tiny SD1.5 pipeline: seeds, batches, variation, hires fix, tiling, stopping, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from modules.generation.prompting import default_conditioning_factory
from modules.generation.txt2img import generate_txt2img
from modules.jobs.progress import JobContext
from modules.types import GenerationRequest, UserInputError

BASE = GenerationRequest(prompt="a red house", negative_prompt="blurry", width=64, height=64, steps=3,
                         sampler_name="Euler", seed=10)


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_same_seed_and_settings_give_the_same_image(sd15):
    first = generate_txt2img(sd15, BASE)
    again = generate_txt2img(sd15, BASE)
    assert first.images[0].size == (64, 64)
    assert np.array_equal(pixels(first.images[0]), pixels(again.images[0]))
    assert first.all_seeds == [10] and first.all_prompts == ["a red house"]


def test_a_batch_of_two_equals_two_single_runs_with_seed_and_seed_plus_one(sd15):
    # Euler a draws noise every step: the per-image generators must keep batch members independent too.
    request = BASE.with_changes(sampler_name="Euler a", batch_size=2)
    batch = generate_txt2img(sd15, request)
    singles = [generate_txt2img(sd15, request.with_changes(batch_size=1, seed=s)).images[0] for s in (10, 11)]
    assert batch.all_seeds == [10, 11]
    for in_batch, alone in zip(batch.images, singles):
        # batched convolutions may round differently in the last bit; a level or two of 255 at most
        assert np.abs(pixels(in_batch) - pixels(alone)).max() <= 2
    assert np.abs(pixels(batch.images[0]) - pixels(batch.images[1])).mean() > 1


def test_variation_strength_zero_is_no_variation_and_one_is_the_subseed(sd15):
    plain = generate_txt2img(sd15, BASE).images[0]
    none = generate_txt2img(sd15, BASE.with_changes(subseed=20, subseed_strength=0.0)).images[0]
    full = generate_txt2img(sd15, BASE.with_changes(subseed=20, subseed_strength=1.0))
    other_seed = generate_txt2img(sd15, BASE.with_changes(seed=20)).images[0]
    assert np.array_equal(pixels(none), pixels(plain))
    assert np.abs(pixels(full.images[0]) - pixels(other_seed)).max() <= 1
    assert "Variation seed: 20, Variation seed strength: 1" in full.infotexts[0]


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos"])
def test_hires_fix_doubles_the_size(sd15, upscaler):
    request = BASE.with_changes(steps=2, enable_hr=True, hr_scale=2.0, hr_upscaler=upscaler,
                                denoising_strength=0.5, hr_second_pass_steps=2)
    result = generate_txt2img(sd15, request)
    assert result.images[0].size == (128, 128)
    assert "Hires upscale: 2" in result.infotexts[0] and f"Hires upscaler: {upscaler}" in result.infotexts[0]
    assert "Size: 64x64" in result.infotexts[0]  # A1111 reports the first pass's size


def test_hires_resize_to_one_side_keeps_the_aspect_ratio(sd15):
    request = BASE.with_changes(steps=1, width=64, height=128, enable_hr=True, hr_resize_x=96,
                                hr_upscaler="Latent (nearest-exact)", denoising_strength=0.0)
    assert generate_txt2img(sd15, request).images[0].size == (96, 192)


def test_tiling_runs_and_restores_the_padding_mode(sd15):
    result = generate_txt2img(sd15, BASE.with_changes(tiling=True, steps=2))
    assert result.images[0].size == (64, 64) and "Tiling: True" in result.infotexts[0]
    convs = [m for m in sd15.pipe.unet.modules() if isinstance(m, torch.nn.Conv2d)]
    assert {m.padding_mode for m in convs} == {"zeros"}


def stop_at(step: int, action):
    """The real conditioning factory, plus a step callback pressing Interrupt/Skip once, at `step` (0-based)
    of the first batch, from inside sampling as a click would land."""
    real = default_conditioning_factory()
    pressed: list[int] = []

    def factory(pipe, prompts, negatives, **kwargs):
        cond = real(pipe, prompts, negatives, **kwargs)
        inner = cond.step_callback

        def callback(p, i, t, tensors):
            out = inner(p, i, t, tensors) if inner is not None else {}
            if i == step and not pressed:
                pressed.append(i)
                action()
            return out

        cond.step_callback = callback
        return cond

    return factory


def test_interrupt_stops_within_one_step_and_returns_the_images_made(sd15):
    job = JobContext("t2i")
    request = BASE.with_changes(steps=6, n_iter=3, batch_size=2)
    factory = stop_at(1, job.request_interrupt)
    result = generate_txt2img(sd15, request, progress=job, conditioning_factory=factory)
    assert result.interrupted
    assert job.snapshot().step == 2  # steps 0 and 1 ran; nothing after the one in progress
    assert len(result.images) == 2 and result.all_seeds == [10, 11]  # the stopped batch, decoded; no more
    assert len(result.infotexts) == 2


def test_skip_ends_the_current_batch_and_the_job_goes_on(sd15):
    job = JobContext("t2i")
    request = BASE.with_changes(steps=3, n_iter=2)
    result = generate_txt2img(sd15, request, progress=job, conditioning_factory=stop_at(0, job.request_skip))
    assert not result.interrupted
    assert result.all_seeds == [10, 11]
    assert job.snapshot().step == 3  # the second batch ran all its steps


@pytest.mark.parametrize("changes, field", [
    ({"sampler_name": "Euler z"}, "sampler_name"),
    ({"width": 100}, "width"),
    ({"steps": 0}, "steps"),
    ({"height": 8192}, "height"),
    ({"enable_hr": True, "hr_upscaler": "Magic"}, "hr_upscaler"),
    ({"enable_hr": True, "hr_sampler_name": "Nope"}, "hr_sampler_name"),
])
def test_bad_input_gives_one_error_naming_the_field(sd15, changes, field):
    with pytest.raises(UserInputError) as caught:
        generate_txt2img(sd15, BASE.with_changes(**changes))
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.fixture(scope="module")
def refiner_env(tmp_path_factory):
    """A checkpoint registry holding a tiny SDXL refiner single file."""
    from modules.generation.runtime import GenerationEnv
    from modules.paths import Paths
    from modules.pipelines.registry import CheckpointRegistry
    from tests.fixtures.checkpoints import write_single_file

    folder = tmp_path_factory.mktemp("refiner")
    write_single_file("sdxl-refiner", folder)
    return GenerationEnv(checkpoints=CheckpointRegistry(Paths.from_dirs(folder / "data", ckpt_dir=folder)))


def test_sdxl_refiner_takes_over_at_the_switch_point(sdxl, refiner_env):
    base = sdxl
    request = BASE.with_changes(steps=4, refiner_checkpoint="tiny-sdxl-refiner", refiner_switch_at=0.5)
    job = JobContext("refine")
    result = generate_txt2img(base, request, progress=job, env=refiner_env)
    plain = generate_txt2img(base, BASE.with_changes(steps=4))
    assert result.images[0].size == (64, 64)
    assert "Refiner: tiny-sdxl-refiner" in result.infotexts[0]
    assert "Refiner switch at: 0.5" in result.infotexts[0]
    assert np.abs(pixels(result.images[0]) - pixels(plain.images[0])).mean() > 1
    assert job.snapshot().step == 4  # base 2 steps + refiner 2 steps


def test_a_refiner_needs_an_sdxl_base(sd15, refiner_env):
    with pytest.raises(UserInputError) as caught:
        generate_txt2img(sd15, BASE.with_changes(refiner_checkpoint="tiny-sdxl-refiner"), env=refiner_env)
    assert caught.value.field == "refiner_checkpoint"
