"""The extension hook points as the generation modes call them (env.hooks / env.info may be None).

Kept apart so txt2img, img2img and inpaint read as before: `begin_batch` before a batch is conditioned,
`end_batch` when its images exist, `image_hook` per image, `step_callback` for each denoising step.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from modules.extensions.hooks import BatchInfo, ImageInfo, describe_exception
from modules.prompts.extra_networks import parse_prompts


def _required(env) -> set[str]:
    info = getattr(env, "info", None)
    return info.requested if info is not None else set()


def begin_batch(env, index: int, prompts: Sequence[str], negatives: Sequence[str], seeds: Sequence[int],
                subseeds: Sequence[int]) -> BatchInfo:
    """The batch's prompts and seeds after before_batch hooks (which may edit them in place)."""
    batch = BatchInfo(index, list(prompts), list(negatives), list(seeds), list(subseeds))
    hooks = getattr(env, "hooks", None)
    if hooks is not None and hooks.has("before_batch"):
        hooks.run("before_batch", batch, env.info, required=_required(env))
        count = len(seeds)
        if not (len(batch.prompts) == len(batch.negative_prompts) == len(batch.seeds) == count):
            raise ValueError(f"a before_batch hook changed the batch size (prompts {len(batch.prompts)}, "
                             f"negative prompts {len(batch.negative_prompts)}, seeds {len(batch.seeds)}; "
                             f"the batch has {count} images)")
    return batch


def end_batch(env, batch: BatchInfo, images: list) -> list:
    hooks = getattr(env, "hooks", None)
    if hooks is not None and hooks.has("after_batch"):
        images = list(images)
        hooks.run("after_batch", batch, images, env.info, required=_required(env))
    return images


def image_hook(env, image, image_info: ImageInfo):
    hooks = getattr(env, "hooks", None)
    if hooks is None or not hooks.has("after_image"):
        return image
    return hooks.run_filter("after_image", image, image_info, env.info, required=_required(env))


def extra_params(env) -> dict[str, Any]:
    """`Label: value` pairs hooks put into info.params for every image's infotext."""
    info = getattr(env, "info", None)
    return dict(info.params) if info is not None else {}


class StepInfo:
    """One finished denoising step: index within the pass, the pass's steps, latents (replaceable)."""

    __slots__ = ("index", "total", "latents", "timestep", "sigma")

    def __init__(self, index: int, total: int, latents, timestep, sigma=None):
        self.index, self.total, self.latents, self.timestep, self.sigma = index, total, latents, timestep, sigma


def step_callback(env, steps: int):
    """A callback_on_step_end running on_step hooks; a hook that replaces step.latents changes them."""
    hooks = getattr(env, "hooks", None)
    if hooks is None or not hooks.has("on_step"):
        return None
    required = _required(env)

    def on_step_end(pipe, step: int, timestep, tensors: dict) -> dict:
        latents = tensors.get("latents")
        scheduler = getattr(pipe, "scheduler", None)
        sigmas = getattr(scheduler, "sigmas", None)
        sigma = sigmas[min(step + 1, len(sigmas) - 1)] if sigmas is not None and len(sigmas) else None
        info = StepInfo(step, steps, latents, timestep, sigma)
        hooks.run("on_step", info, env.info, required=required)
        return {"latents": info.latents} if info.latents is not latents and info.latents is not None else {}

    return on_step_end


@contextlib.contextmanager
def networks_active(env, pipe, batch: BatchInfo) -> Iterator[None]:
    """Activate the extra networks the batch's prompts name (`<lora:film:0.8>`) for the batch's passes.

    Each network type is an extension's provider (`api.register_extra_network`): `provider.activate(pipe,
    calls, info)` returns a context manager (or None) that is exited after the batch, so the model is
    as before. A tag no provider owns is a warning, as in A1111; the tags never reach the text encoder.
    """
    _, networks = parse_prompts(list(batch.prompts))
    if not networks:
        yield
        return
    registry = getattr(getattr(env, "hooks", None), "registry", None)
    info = getattr(env, "info", None)
    with contextlib.ExitStack() as stack:
        for name, calls in networks.items():
            provider = registry.provider("extra_network", name) if registry is not None else None
            if provider is None:
                _warn(info, f"unknown extra network <{name}:...>: no enabled extension handles it; ignored")
                continue
            try:
                manager = provider.provider.activate(pipe, calls, info)
                if manager is not None:
                    stack.enter_context(manager)
            except Exception as exc:
                if info is not None and provider.extension in info.requested:
                    raise
                _warn(info, f"extra network <{name}:...> ({provider.extension}) failed: {describe_exception(exc)}")
                registry.errors.add(provider.extension, f"activate {name}: {describe_exception(exc)}")
        yield


def _warn(info, message: str) -> None:
    if info is not None and message not in info.warnings:
        info.warnings.append(message)
