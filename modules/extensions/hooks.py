"""Named hook points around generation, each a list of callables run in registration order.

Every call is wrapped: an extension that raises is reported (in its `ExtensionErrors` entry and the log)
and skipped, so one broken extension never breaks a generation. The exception is a request that asked
for that extension by name (its values are in `request.extensions`): then the job fails with a message
naming the extension, because silently dropping what the user asked for would be worse.

Hook points (what each callable gets, what it may return):
- before_generation(request, info) -> GenerationRequest | None   a changed request replaces it
- process_prompts(prompts, info) -> None                         edit prompts in place (a PromptBatch)
- patch_pipeline(pipe, request, info) -> context manager | None  entered for the whole job, then exited
- on_step(step, info) -> None                                    after each denoising step
- after_image(image, info) -> Image | None                       a returned image replaces it
- before_save(image, info) -> None                               info.params may be edited (infotext)
- after_save(path, info) -> None                                 the file is written
"""
from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("webui.extensions")

HOOK_POINTS: tuple[str, ...] = (
    "before_generation",
    "process_prompts",
    "patch_pipeline",
    "on_step",
    "after_image",
    "before_save",
    "after_save",
)


class ExtensionHookError(RuntimeError):
    """An extension the request asked for failed in a hook; the message names it and the hook."""


@dataclass
class Hook:
    point: str
    extension: str
    fn: Callable[..., Any]
    order: int = 0


@dataclass
class ExtensionErrors:
    """Errors per extension (import, setup, hooks), newest last; read by the Extensions tab and the API."""

    limit: int = 20
    _by_name: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, extension: str, message: str) -> None:
        with self._lock:
            entries = self._by_name.setdefault(extension, [])
            entries.append(message)
            del entries[:-self.limit]

    def of(self, extension: str) -> list[str]:
        with self._lock:
            return list(self._by_name.get(extension, ()))

    def clear(self, extension: str) -> None:
        with self._lock:
            self._by_name.pop(extension, None)

    def all(self) -> dict[str, list[str]]:
        with self._lock:
            return {name: list(msgs) for name, msgs in self._by_name.items()}


def describe_exception(exc: BaseException) -> str:
    """'TypeError: message' with the innermost frame's file:line; safe even when str(exc) raises."""
    try:
        text = str(exc)
    except Exception:  # an exception whose __str__ raises must not escape the reporter
        text = "<unprintable>"
    where = ""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ is not None else []
    if frames:
        last = frames[-1]
        where = f" (at {last.filename}:{last.lineno})"
    return f"{type(exc).__name__}: {text}{where}" if text else f"{type(exc).__name__}{where}"


class HookRegistry:
    """The hooks every extension registered; `run`/`patched` call them with errors contained."""

    def __init__(self, errors: ExtensionErrors | None = None):
        self.errors = errors or ExtensionErrors()
        self._hooks: dict[str, list[Hook]] = {point: [] for point in HOOK_POINTS}
        self._lock = threading.Lock()

    def add(self, point: str, extension: str, fn: Callable[..., Any], order: int = 0) -> None:
        """Register `fn` at `point` for `extension`; lower `order` runs first, ties in registration order."""
        if point not in self._hooks:
            raise ValueError(f"unknown hook point {point!r}; known: {', '.join(HOOK_POINTS)}")
        if not callable(fn):
            raise TypeError(f"hook for {point!r} must be callable")
        with self._lock:
            hooks = self._hooks[point]
            hooks.append(Hook(point, extension, fn, order))
            hooks.sort(key=lambda h: h.order)  # stable: equal orders keep registration order

    def remove_extension(self, extension: str) -> None:
        """Drop every hook of one extension (it was disabled or failed to set up)."""
        with self._lock:
            for point, hooks in self._hooks.items():
                self._hooks[point] = [h for h in hooks if h.extension != extension]

    def hooks(self, point: str) -> list[Hook]:
        with self._lock:
            return list(self._hooks[point])

    def has(self, point: str) -> bool:
        return bool(self.hooks(point))

    def run(self, point: str, *args: Any, required: Iterable[str] = ()) -> list[tuple[str, Any]]:
        """Call every hook of `point`; returns (extension, value) for each hook that did not fail.

        A failing hook is reported and skipped, unless its extension is in `required` (the request named
        it): then ExtensionHookError is raised with the extension, hook point and error.
        """
        required = set(required)
        results = []
        for hook in self.hooks(point):
            try:
                results.append((hook.extension, hook.fn(*args)))
            except Exception as exc:
                self._failed(hook, exc, required)
        return results

    def run_filter(self, point: str, value: Any, *args: Any, required: Iterable[str] = ()) -> Any:
        """Like run, but each hook may return a replacement for `value` (None keeps it); returns it."""
        required = set(required)
        for hook in self.hooks(point):
            try:
                changed = hook.fn(value, *args)
            except Exception as exc:
                self._failed(hook, exc, required)
                continue
            if changed is not None:
                value = changed
        return value

    @contextlib.contextmanager
    def patched(self, point: str, *args: Any, required: Iterable[str] = ()):
        """Enter every context manager the hooks of `point` return; exit them in reverse on the way out.

        A hook whose factory or __enter__ fails is reported and left out (the others stay applied); an
        error in __exit__ is reported too, so restoring one patch never stops restoring the others.
        """
        required = set(required)
        with contextlib.ExitStack() as stack:
            for hook in self.hooks(point):
                try:
                    manager = hook.fn(*args)
                    if manager is None:
                        continue
                    manager.__enter__()
                except Exception as exc:
                    self._failed(hook, exc, required)
                    continue
                stack.push(self._guarded_exit(hook, manager))
            yield

    def _guarded_exit(self, hook: Hook, manager):
        def exit_(exc_type, exc, tb):
            try:
                return manager.__exit__(exc_type, exc, tb)
            except Exception as error:
                self.errors.add(hook.extension, f"{hook.point} (restoring): {describe_exception(error)}")
                log.error("Extension %s failed restoring %s: %s", hook.extension, hook.point,
                          describe_exception(error))
                return False
        return exit_

    def _failed(self, hook: Hook, exc: Exception, required: set[str]) -> None:
        message = f"{hook.point}: {describe_exception(exc)}"
        self.errors.add(hook.extension, message)
        log.error("Extension %s failed in %s", hook.extension, message)
        if hook.extension in required:
            raise ExtensionHookError(f"extension {hook.extension!r} failed in {message}") from None
