"""Named hook points around generation, each a list of callables run in registration order.

Every call is wrapped: an extension that raises is reported (in its `ExtensionErrors` entry and the log)
and skipped, so one broken extension never breaks a generation. The exception is a request that asked
for that extension by name (its values are in `request.extensions`): then the job fails with a message
naming the extension, because silently dropping what the user asked for would be worse.

Hook points (what each callable gets, what it may return); `info` is the job's GenerationInfo:
- before_generation(request, info) -> GenerationRequest | None   a changed request replaces it
- run_job(request, info, run) -> GenerationResult | None         wraps the whole job; `run(request)` is
                                                                 the normal generation (A1111's Script.run)
- patch_pipeline(pipe, request, info) -> context manager | None  entered for the whole job, then exited
- before_batch(batch, info) -> None                              edit batch.prompts / seeds in place
- on_step(step, info) -> None                                    after each denoising step
- after_batch(batch, images, info) -> None                       images is a list; replace items in place
- after_image(image, image_info, info) -> Image | None           a returned image replaces it
- before_save(save, info) -> None                                save.image / save.infotext may change
- after_save(path, info) -> None                                 the file is written
- after_generation(result, info) -> None                         the finished GenerationResult
"""
from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from modules.types import UserInputError

log = logging.getLogger("webui.extensions")

HOOK_POINTS: tuple[str, ...] = (
    "before_generation",
    "run_job",
    "patch_pipeline",
    "before_batch",
    "on_step",
    "after_batch",
    "after_image",
    "before_save",
    "after_save",
    "after_generation",
)


class ExtensionHookError(RuntimeError):
    """An extension the request asked for failed in a hook; the message names it and the hook."""


# Raised by hooks on purpose, so not contained: a named extension's failure and a user error (a bad value
# in the request, which an extension may also detect, e.g. an X/Y/Z axis value).
_PASS_THROUGH = (ExtensionHookError, UserInputError)


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


@dataclass
class GenerationInfo:
    """What every hook of one job sees: the request as it runs, the model, and what hooks add back.

    `params` are extra `Label: value` pairs written into every image's infotext (A1111's
    extra_generation_params); `warnings` are shown to the user with the result; `state` is scratch
    space per extension for the job's duration (`info.state.setdefault(name, {})`).
    """

    request: Any
    model: Any = None
    job: Any = None  # the JobContext (progress, interrupt checks), None outside the queue
    params: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    def args(self, extension: str) -> list[Any]:
        """The always-on section values for `extension` (UI section or API alwayson_scripts), [] if none."""
        entry = (getattr(self.request, "extensions", None) or {}).get(extension)
        if isinstance(entry, dict):
            return list(entry.get("args") or [])
        return list(entry) if isinstance(entry, (list, tuple)) else []

    @property
    def requested(self) -> set[str]:
        """Extensions the request named (their failure fails the job instead of being skipped)."""
        return set(getattr(self.request, "extensions", None) or {})


@dataclass
class BatchInfo:
    """One image batch: its index and the per-image prompts and seeds (hooks may edit the lists)."""

    index: int
    prompts: list[str]
    negative_prompts: list[str]
    seeds: list[int]
    subseeds: list[int]


@dataclass
class ImageInfo:
    """One finished image: its index in the job, seed, prompts and infotext parameters."""

    index: int
    seed: int
    prompt: str
    negative_prompt: str
    batch_index: int = 0


@dataclass
class SaveInfo:
    """An image about to be saved: hooks may change `image` or `infotext` (A1111's ImageSaveParams)."""

    image: Any
    infotext: str
    path: str = ""


class HookRegistry:
    """The hooks every extension registered; `run`/`patched` call them with errors contained."""

    def __init__(self, errors: ExtensionErrors | None = None, registry: Any = None):
        self.errors = errors or ExtensionErrors()
        self.registry = registry  # the ExtensionRegistry these hooks belong to (providers live there)
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
            except _PASS_THROUGH:
                raise
            except Exception as exc:
                self._failed(hook, exc, required)
        return results

    def run_filter(self, point: str, value: Any, *args: Any, required: Iterable[str] = ()) -> Any:
        """Like run, but each hook may return a replacement for `value` (None keeps it); returns it."""
        required = set(required)
        for hook in self.hooks(point):
            try:
                changed = hook.fn(value, *args)
            except _PASS_THROUGH:
                raise
            except Exception as exc:
                self._failed(hook, exc, required)
                continue
            if changed is not None:
                value = changed
        return value

    def run_wrapped(self, request: Any, info: Any, run: Callable[[Any], Any]) -> Any:
        """Run `run(request)` through every run_job wrapper (first registered is outermost).

        A wrapper returns a result, or None to let the normal generation run. A wrapper that raises is
        reported and bypassed (unless the request named its extension), so the user still gets images.
        """
        call = run
        for hook in reversed(self.hooks("run_job")):
            call = self._wrap(hook, call, info)
        return call(request)

    def _wrap(self, hook: Hook, inner: Callable[[Any], Any], info: Any) -> Callable[[Any], Any]:
        def call(request):
            ran: list[Any] = []  # the inner result, once the wrapper called run_next

            def run_next(req=None):
                ran.append(inner(request if req is None else req))
                return ran[-1]

            try:
                result = hook.fn(request, info, run_next)
            except _PASS_THROUGH:
                raise  # a named extension's failure, or a bad value the user must fix: the job's answer
            except Exception as exc:
                self._failed(hook, exc, getattr(info, "requested", set()))
                if ran:  # the images exist but the wrapper broke afterwards: say so, do not run twice
                    raise ExtensionHookError(f"extension {hook.extension!r} failed in run_job after "
                                             f"generating: {describe_exception(exc)}") from None
                return inner(request)
            if result is None:
                return ran[-1] if ran else inner(request)
            return result
        return call

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
                except _PASS_THROUGH:
                    raise
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
