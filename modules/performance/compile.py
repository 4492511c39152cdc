"""torch.compile of the UNet, once per loaded model, with shapes dynamic so a new size does not recompile.

The module is compiled in place (`nn.Module.compile`), so `pipe.unet` stays the same object: derived
img2img/inpaint pipelines (from_pipe), LoRA and ToMe see the module they always saw. Compiling is lazy: the
work happens at the first UNet call, and so do its failures (no C++ compiler, an op the backend cannot
lower). Such a failure is caught there, logged once as a warning, and the model runs eagerly from then on;
the job itself never fails for it.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import torch

log = logging.getLogger(__name__)

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


def is_compiled(unet: Any) -> bool:
    """True while the UNet runs through torch.compile (False after a fallback to eager)."""
    return getattr(unet, "_compiled_call_impl", None) is not None


def compile_unet(unet: torch.nn.Module, mode: str = "default", backend: str = "inductor") -> bool:
    """Compile `unet` in place (dynamic shapes); a second call on the same module does nothing.

    Returns True when it is compiled now. `backend` other than inductor (tests use "eager") takes no mode.
    """
    if mode not in COMPILE_MODES:
        raise ValueError(f"torch.compile mode {mode!r} is not one of {', '.join(COMPILE_MODES)}")
    if is_compiled(unet):
        return True
    options = {"mode": mode} if backend == "inductor" else {}
    try:
        unet.compile(backend=backend, dynamic=True, **options)
    except Exception as exc:  # noqa: BLE001 - an unknown backend or a torch without dynamo: stay eager
        _warn(exc)
        return False
    compiled = unet._compiled_call_impl

    # nn.Module.__call__ runs `_compiled_call_impl` when set, else the eager `_call_impl`: wrapping it is how
    # a compile failure at the first call turns into an eager call instead of a failed job.
    def call_or_fall_back(*args, **kwargs):
        args, kwargs = tuple(_own_storage(a) for a in args), {k: _own_storage(v) for k, v in kwargs.items()}
        try:
            with _sizes_traced_apart:
                return compiled(*args, **kwargs)
        except Exception as exc:
            if not is_compile_failure(exc):
                raise  # a real error of the model (shape, out of memory) is the job's to report
            _warn(exc)
            unet._compiled_call_impl = None
            return unet._call_impl(*args, **kwargs)

    unet._compiled_call_impl = call_or_fall_back
    return True


def _own_storage(value: Any) -> Any:
    """A small tensor that is a view (the timestep: one element of the scheduler's `timesteps`) as a copy.

    Dynamo guards on a view's base too. The base of the timestep is the schedule, as long as the job has
    steps, and dynamo gives sizes that are equal at the first call one symbol ("duck sizing"): a first job
    with as many steps as UNet rows (2 steps, CFG on) compiled again at the next step count, minutes on a
    CPU. A copy of a few numbers has no base and costs nothing beside a UNet call."""
    if isinstance(value, torch.Tensor) and value._base is not None and value.numel() <= 64:
        return value.clone()
    return value


class _DuckSizingOff:
    """Trace with each input size its own symbol (no "duck sizing"), while a call of a compiled UNet runs.

    By default dynamo gives sizes that are equal at the first call one symbol, and guards that they stay equal:
    a first square job (latent height = width) compiled the whole UNet again at the first non-square one, and
    a latent side equal to the text encoder's width (32 on the tiny test UNets at 64x64) again at the next
    size; minutes each on a CPU. Sizes that the model really ties together (the batch of the latents and of
    the prompt embeddings) still get their guard from the ops that combine them.

    torch's setting is process-wide, so it is off only while at least one such call runs and back to what it
    was after the last: a count under a lock, because two threads' plain patch/unpatch could interleave and
    leave it off for every other compile in the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._saved = True

    def __enter__(self) -> None:
        from torch.fx.experimental import _config as fx_config

        with self._lock:
            if self._active == 0:
                self._saved = fx_config.use_duck_shape
                fx_config.use_duck_shape = False
            self._active += 1

    def __exit__(self, *exc_info) -> None:
        from torch.fx.experimental import _config as fx_config

        with self._lock:
            self._active -= 1
            if self._active == 0:
                fx_config.use_duck_shape = self._saved


_sizes_traced_apart = _DuckSizingOff()


def uncompile_unet(unet: torch.nn.Module) -> None:
    """Run `unet` eagerly again (the setting was switched off)."""
    unet._compiled_call_impl = None


def is_compile_failure(exc: BaseException) -> bool:
    """True for errors raised by dynamo/inductor themselves (not by the model's own code)."""
    dynamo_error = getattr(getattr(torch, "_dynamo", None), "exc", None)
    base = getattr(dynamo_error, "TorchDynamoException", None)
    if base is not None and isinstance(exc, base):
        return True
    return type(exc).__module__.startswith(("torch._dynamo", "torch._inductor"))


def _warn(exc: BaseException) -> None:
    # Dynamo wraps the backend's error ("backend='inductor' raised:" + the cause): name the cause.
    cause = getattr(exc, "inner_exception", None) or exc.__cause__ or exc
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    log.warning("torch.compile of the UNet failed (%s: %s); running it uncompiled", type(cause).__name__,
                first[:300])
