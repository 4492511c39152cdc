"""prepare_conditioning at run time: what the UNet receives per step, AND, padding, SDXL zeros."""
from __future__ import annotations

import contextlib

import pytest
import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

from modules.prompts.conditioning import prepare_conditioning
from modules.prompts.encode import PromptEncoder


@pytest.fixture(scope="module")
def sd15(tiny_sd15_pipe):
    """The session SD1.5 pipe's components with a first-order scheduler (one UNet call per step)."""
    scheduler = EulerDiscreteScheduler.from_config(tiny_sd15_pipe.scheduler.config)
    pipe = StableDiffusionPipeline.from_pipe(tiny_sd15_pipe, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@contextlib.contextmanager
def unet_spy(pipe):
    """Record the keyword inputs and output of every UNet call; the hook is removed on exit."""
    calls: list[dict] = []

    def hook(module, args, kwargs, output):
        calls.append({"hidden": kwargs["encoder_hidden_states"].detach().clone(), "args": args,
                      "added": kwargs.get("added_cond_kwargs"), "out": output[0].detach().clone()})

    handle = pipe.unet.register_forward_hook(hook, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


def run(pipe, cond, steps: int, guidance: float = 7.0, **kwargs):
    extra = {}
    if cond.step_callback is not None:
        extra = {"callback_on_step_end": cond.step_callback,
                 "callback_on_step_end_tensor_inputs": cond.callback_tensor_inputs}
    with cond.patch:
        return pipe(**cond.pipe_kwargs, num_inference_steps=steps, guidance_scale=guidance, height=64, width=64,
                    output_type="latent", generator=torch.Generator().manual_seed(0), **extra, **kwargs)


def test_static_prompt_has_no_callback_and_plain_patch(sd15):
    cond = prepare_conditioning(sd15, ["a cat"], ["ugly"], steps=10, emphasis="No norm")
    assert cond.step_callback is None and cond.callback_tensor_inputs == []
    assert cond.pipe_kwargs["prompt_embeds"].shape == (1, 77, 32)
    assert cond.extra_params == {"Emphasis": "No norm"} and cond.warnings == []
    with cond.patch:
        pass


def test_prompt_editing_switches_after_half_the_steps(sd15):
    encoder = PromptEncoder.from_pipe(sd15)
    cat, dog, neg = (encoder.encode(t).embeds for t in ("a cat", "a dog", "blurry"))
    cond = prepare_conditioning(sd15, ["a [cat:dog:0.5]"], ["blurry"], steps=10)
    assert cond.callback_tensor_inputs == ["prompt_embeds"]
    with unet_spy(sd15) as calls:
        run(sd15, cond, steps=10)
    assert len(calls) == 10
    for step, call in enumerate(calls, start=1):
        torch.testing.assert_close(call["hidden"][0], neg)  # CFG layout kept: [negative, positive]
        torch.testing.assert_close(call["hidden"][1], cat if step <= 5 else dog)


def test_alternation_changes_every_step(sd15):
    encoder = PromptEncoder.from_pipe(sd15)
    cat, dog = encoder.encode("a cat").embeds, encoder.encode("a dog").embeds
    cond = prepare_conditioning(sd15, ["a [cat|dog]"], [""], steps=4)
    with unet_spy(sd15) as calls:
        run(sd15, cond, steps=4)
    for call, expected in zip(calls, (cat, dog, cat, dog)):
        torch.testing.assert_close(call["hidden"][1], expected)


def test_and_equals_hand_combined_unet_outputs(sd15):
    encoder = PromptEncoder.from_pipe(sd15)
    cond = prepare_conditioning(sd15, ["a cat AND a dog:0.5"], ["blurry"], steps=1)
    with unet_spy(sd15) as calls:
        run(sd15, cond, steps=1)
    assert len(calls) == 1 and "forward" not in sd15.unet.__dict__  # the patch is gone
    sample, timestep = calls[0]["args"][0][:1], calls[0]["args"][1]
    with torch.no_grad():
        def unet(text):
            hidden = encoder.encode(text).embeds[None]
            return sd15.unet(sample, timestep, encoder_hidden_states=hidden, return_dict=False)[0][0]
        uncond, cat, dog = unet("blurry"), unet("a cat"), unet(" a dog")
    expected = uncond + 1.0 * (cat - uncond) + 0.5 * (dog - uncond)
    torch.testing.assert_close(calls[0]["out"][0], uncond, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(calls[0]["out"][1], expected, atol=1e-5, rtol=1e-4)


def test_and_in_slices_matches_one_batch(sd15):
    prompts = ["a cat AND a dog:-0.5", "a bird"]
    batched = run(sd15, prepare_conditioning(sd15, prompts, ["", ""], steps=2), steps=2).images
    sliced = run(sd15, prepare_conditioning(sd15, prompts, ["", ""], steps=2, max_unet_rows=1), steps=2).images
    # A batch of 5 UNet rows and five batches of 1 round differently in float32 matmuls (seen: 1.4e-5 on
    # one latent of 8192 after 2 steps); a wrong slicing differs by orders of magnitude more.
    torch.testing.assert_close(batched, sliced, atol=1e-4, rtol=1e-4)


def test_and_without_cfg_runs_the_negative_itself(sd15):
    cond = prepare_conditioning(sd15, ["a cat AND a dog"], ["blurry"], steps=1)
    with unet_spy(sd15) as calls:
        run(sd15, cond, steps=1, guidance=1.0)
    assert calls[0]["out"].shape[0] == 1  # the pipeline still sees its own batch of one
    encoder = PromptEncoder.from_pipe(sd15)
    sample, timestep = calls[0]["args"][0], calls[0]["args"][1]
    with torch.no_grad():
        uncond, cat, dog = (sd15.unet(sample, timestep, encoder_hidden_states=encoder.encode(t).embeds[None],
                                      return_dict=False)[0][0] for t in ("blurry", "a cat", " a dog"))
    expected = uncond + (cat - uncond) + (dog - uncond)  # A1111 at cfg scale 1
    torch.testing.assert_close(calls[0]["out"][0], expected, atol=1e-5, rtol=1e-4)


def test_longer_negative_pads_positive_with_empty_chunks(sd15):
    encoder = PromptEncoder.from_pipe(sd15)
    cond = prepare_conditioning(sd15, ["a cat"], ["ugly, " * 60], steps=4)
    positive, negative = cond.pipe_kwargs["prompt_embeds"], cond.pipe_kwargs["negative_prompt_embeds"]
    assert positive.shape == negative.shape == (1, 154, 32)
    torch.testing.assert_close(positive[0, :77], encoder.encode("a cat").embeds)
    torch.testing.assert_close(positive[0, 77:], encoder.empty_chunk())


def test_pad_conds_keeps_one_length_over_all_steps(sd15):
    prompt = ["[a cat:" + "dog " * 80 + ":0.5]"]
    loose = prepare_conditioning(sd15, prompt, [""], steps=4)
    padded = prepare_conditioning(sd15, prompt, [""], steps=4, pad_conds=True)
    assert loose.pipe_kwargs["prompt_embeds"].shape[1] == 77
    assert padded.pipe_kwargs["prompt_embeds"].shape[1] == 154
    with unet_spy(sd15) as calls:
        run(sd15, loose, steps=4)
    assert [c["hidden"].shape[1] for c in calls] == [77, 77, 154, 154]


def test_sdxl_kwargs_zero_negative_and_pooled_swap(tiny_sdxl_pipe):
    scheduler = EulerDiscreteScheduler.from_config(tiny_sdxl_pipe.scheduler.config)
    pipe = StableDiffusionXLPipeline.from_pipe(tiny_sdxl_pipe, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    encoder = PromptEncoder.from_pipe(pipe)
    cond = prepare_conditioning(pipe, ["a [cat:dog:0.5]"], [""], steps=2)
    kwargs = cond.pipe_kwargs
    assert kwargs["prompt_embeds"].shape == (1, 77, 96) and kwargs["pooled_prompt_embeds"].shape == (1, 32)
    assert not kwargs["negative_prompt_embeds"].any() and not kwargs["negative_pooled_prompt_embeds"].any()
    assert cond.callback_tensor_inputs == ["prompt_embeds", "add_text_embeds"]
    with unet_spy(pipe) as calls:
        run(pipe, cond, steps=2)
    for call, text in zip(calls, ("a cat", "a dog")):
        torch.testing.assert_close(call["added"]["text_embeds"][1], encoder.encode(text).pooled)
        torch.testing.assert_close(call["hidden"][1], encoder.encode(text).embeds)


def test_sdxl_and_uses_each_sub_prompts_pooled(tiny_sdxl_pipe):
    cond = prepare_conditioning(tiny_sdxl_pipe, ["a cat AND a dog"], ["blurry"], steps=1)
    out = run(tiny_sdxl_pipe, cond, steps=1).images
    assert out.shape == (1, 4, 32, 32) and torch.isfinite(out).all()
    assert "forward" not in tiny_sdxl_pipe.unet.__dict__


def test_mismatched_negative_count_is_an_error(sd15):
    with pytest.raises(ValueError, match="negative"):
        prepare_conditioning(sd15, ["a", "b", "c"], ["x", "y"], steps=2)


def test_prompts_of_one_chunk_never_encode_the_empty_chunk(sd15, monkeypatch):
    # the empty chunk only pads rows of unequal length; encoding it anyway cost every job a text-encoder pass
    calls = []
    original = PromptEncoder.empty_chunk

    def counted(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(PromptEncoder, "empty_chunk", counted)
    run(sd15, prepare_conditioning(sd15, ["a cat AND a dog"], ["blurry"], steps=2), steps=2)
    assert calls == []
    run(sd15, prepare_conditioning(sd15, ["a cat"], ["ugly, " * 60], steps=2), steps=2)
    assert calls == [1]  # a longer negative: now it pads, encoded once
