"""`modules.script_callbacks` for A1111 extensions: `on_*` registration, and the parameter objects.

Callbacks are kept per app (in `Callbacks`), with the extension that registered them, so a failing
callback is reported against its extension and the others still run.
"""
from __future__ import annotations

import logging
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("webui.a1111")

CALLBACK_NAMES = (
    "app_started", "model_loaded", "ui_tabs", "ui_train_tabs", "ui_settings", "before_image_saved",
    "image_saved", "cfg_denoiser", "cfg_denoised", "cfg_after_cfg", "before_component", "after_component",
    "image_grid", "infotext_pasted", "script_unloaded", "before_ui", "list_optimizers", "list_unets",
    "before_token_counter", "extra_noise", "beta_schedule", "before_reload", "ui_extra_networks",
)


@dataclass
class ImageSaveParams:
    image: Any
    p: Any
    filename: str
    pnginfo: dict[str, Any]


@dataclass
class CFGDenoiserParams:
    x: Any
    image_cond: Any
    sigma: Any
    sampling_step: int
    total_sampling_steps: int
    text_cond: Any
    text_uncond: Any
    denoiser: Any = None


@dataclass
class CFGDenoisedParams:
    x: Any
    sampling_step: int
    total_sampling_steps: int
    inner_model: Any = None


@dataclass
class ImageGridLoopParams:
    imgs: list
    cols: int
    rows: int


class Callbacks:
    """The callbacks A1111 extensions registered in one app, by name, each with its extension."""

    def __init__(self, current_extension: Callable[[], str | None], report: Callable[[str, str], None]):
        self._current = current_extension
        self._report = report
        self._by_name: dict[str, list[tuple[str, Callable[..., Any]]]] = {name: [] for name in CALLBACK_NAMES}

    def add(self, name: str, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise TypeError(f"on_{name}: callback must be callable")
        self._by_name[name].append((self._current() or "unknown", fn))

    def registered(self, name: str) -> list[tuple[str, Callable[..., Any]]]:
        return list(self._by_name[name])

    def call(self, name: str, *args: Any) -> list[tuple[str, Any]]:
        """Call every callback of `name`; failures are reported per extension, never raised."""
        results = []
        for extension, fn in self.registered(name):
            try:
                results.append((extension, fn(*args)))
            except Exception as exc:
                self._report(extension, f"on_{name} callback {getattr(fn, '__name__', fn)!s}: "
                                        f"{type(exc).__name__}: {exc}")
        return results

    def remove_function(self, fn: Callable[..., Any]) -> None:
        for name, entries in self._by_name.items():
            self._by_name[name] = [(e, f) for e, f in entries if f is not fn]

    def remove_extension(self, extension: str) -> None:
        for name, entries in self._by_name.items():
            self._by_name[name] = [(e, f) for e, f in entries if e != extension]

    def module(self) -> types.ModuleType:
        """The `modules.script_callbacks` module extensions import."""
        mod = types.ModuleType("modules.script_callbacks")
        for name in CALLBACK_NAMES:
            setattr(mod, f"on_{name}", self._registrar(name))
        mod.ImageSaveParams = ImageSaveParams
        mod.CFGDenoiserParams = CFGDenoiserParams
        mod.CFGDenoisedParams = CFGDenoisedParams
        mod.ImageGridLoopParams = ImageGridLoopParams
        mod.remove_callbacks_for_function = self.remove_function
        mod.remove_current_script_callbacks = lambda: self.remove_extension(self._current() or "")
        return mod

    def _registrar(self, name: str):
        def register(callback, *, name_: str | None = None, **_ignored):
            self.add(name, callback)
        register.__name__ = f"on_{name}"
        return register
