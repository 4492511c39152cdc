"""Hand diffusers our noise for one pipeline call: the pipeline's initial noise and the scheduler's step
noise come from an ImageRNG, and the VAE encodes images with its mean.

diffusers draws noise itself through `randn_tensor(shape, generator=...)`, a function each pipeline and
scheduler module imports by name, and a generator it accepts must be a real torch.Generator (an NV Philox
stream cannot be one). So for the call we pass placeholder CPU generators ("tokens") and swap each involved
module's `randn_tensor` for a router: a draw whose generator is one of this call's tokens is answered from the
ImageRNG; any other draw (another thread, another caller, no generator) goes to diffusers' own function.
The tokens live in a ContextVar, so another thread never sees them; the module attributes are swapped under
a lock with a use count and put back when the last call using them ends.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from modules.rng.image_rng import ImageRNG
from modules.rng.sources import seeded_generator

NOISE, POSTERIOR = "noise", "posterior"


@dataclass
class _Route:
    rng: ImageRNG
    tokens: list[torch.Generator]
    by_id: dict[int, int] = field(default_factory=dict)

    def indices(self, generator: Any) -> list[int] | None:
        """Image indices when `generator` is this call's tokens (a list, or one token), else None."""
        items = generator if isinstance(generator, (list, tuple)) else [generator]
        found = [self.by_id.get(id(g)) for g in items]
        if not found or any(i is None for i in found):
            return None
        return found


_ROUTE: contextvars.ContextVar[_Route | None] = contextvars.ContextVar("webui_noise_route", default=None)
# Process state, on purpose: which modules have the router installed and by how many calls (see docstring).
_LOCK = threading.Lock()
_INSTALLED: dict[str, tuple[Any, int]] = {}


def _router(original, role: str):
    @functools.wraps(original)
    def randn_tensor(shape, generator=None, device=None, dtype=None, layout=None):
        route = _ROUTE.get()
        indices = route.indices(generator) if route is not None and generator is not None else None
        if indices is None:
            return original(shape, generator=generator, device=device, dtype=dtype, layout=layout)
        if role == POSTERIOR:  # the VAE's sample: zero noise = the mean, so the seed moves nothing there
            return torch.zeros(tuple(shape), device=device, dtype=dtype)
        noise = route.rng.draw(tuple(shape[1:]), indices)
        return noise.to(device=device or "cpu", dtype=dtype or torch.float32)

    return randn_tensor


def randn_routed(shape, generator=None, device=None, dtype=None, layout=None) -> torch.Tensor:
    """diffusers' randn_tensor as a routed module answers it, for noise our own scheduler code draws (sigma
    churn): this call's tokens get the ImageRNG's step noise, any other generator diffusers' own draw."""
    from diffusers.utils.torch_utils import randn_tensor

    return _router(randn_tensor, NOISE)(shape, generator=generator, device=device, dtype=dtype, layout=layout)


def noise_modules(*objects: Any) -> dict[str, str]:
    """{module name: role} of every module in the class hierarchies of `objects` (instances or classes) that
    draws with randn_tensor, plus the VAE's posterior module."""
    out: dict[str, str] = {}
    for obj in objects:
        for cls in (obj if isinstance(obj, type) else type(obj)).__mro__:
            module = sys.modules.get(cls.__module__)
            if module is not None and callable(getattr(module, "randn_tensor", None)):
                out[cls.__module__] = NOISE
    from diffusers.models.autoencoders import vae

    out[vae.__name__] = POSTERIOR
    return out


def _install(modules: dict[str, str]) -> None:
    with _LOCK:
        for name, role in modules.items():
            module = sys.modules[name]
            original, count = _INSTALLED.get(name, (module.randn_tensor, 0))
            if count == 0:
                module.randn_tensor = _router(original, role)
            _INSTALLED[name] = (original, count + 1)


def _uninstall(modules: dict[str, str]) -> None:
    with _LOCK:
        for name in modules:
            original, count = _INSTALLED[name]
            if count == 1:
                sys.modules[name].randn_tensor = original
                del _INSTALLED[name]
            else:
                _INSTALLED[name] = (original, count - 1)


@contextlib.contextmanager
def noise_routed(rng: ImageRNG | None, pipe: Any, scheduler: Any) -> Iterator[list[torch.Generator] | None]:
    """For one call of `pipe` with `scheduler` (an instance or its class): yields the `generator=` list to
    pass (None without an rng)."""
    if rng is None:
        yield None
        return
    tokens = [seeded_generator(seed) for seed in rng.seeds]
    route = _Route(rng, tokens, {id(t): i for i, t in enumerate(tokens)})
    modules = noise_modules(pipe, scheduler)
    reset = _ROUTE.set(route)
    _install(modules)
    try:
        yield tokens
    finally:
        _uninstall(modules)
        _ROUTE.reset(reset)
