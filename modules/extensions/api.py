"""The public extension API: the one object (`ExtensionApi`) a native extension's `setup(api)` receives.

This module, together with `modules.types`, is everything an extension may import from the core; the
built-in LoRA, ControlNet and dataset-tools extensions use nothing else (a test walks their imports).
It is versioned: `API_VERSION` is (major, minor); a minor bump only adds, a major bump may break, and a
manifest's `api_version` names the major it was written for. See docs/extensions.md.

What setup registers is collected first and merged only when setup returns, so an extension that
raises half-way leaves no tab, hook or setting behind.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modules.extensions.hooks import HOOK_POINTS, ExtensionHookError
from modules.extensions.networks import NetworkCard, find_preview, read_user_metadata, write_user_metadata
from modules.extensions.registry import (
    PROVIDER_KINDS,
    Contributions,
    InfotextField,
    NamedProvider,
    RouteSpec,
    SectionSpec,
    TabSpec,
)
from modules.postprocessing.steps import ExtrasStep, PostprocessedImage
from modules.prompts.extra_networks import ExtraNetworkParams
from modules.settings import SettingSpec
from modules.types import GenerationRequest, GenerationResult, UserInputError

API_VERSION: tuple[int, int] = (1, 3)


@dataclass(frozen=True)
class LoadedModelSummary:
    """The loaded checkpoint as extensions see it (1.2): enough to filter model lists by family."""

    name: str
    family: str  # "sd1", "sd2" or "sdxl"
    architecture: str  # the bundled config it runs as: "sd15", "sd2-v", "sdxl-base", ...
# Jobs an extension submits are of kind "extension:<extension>/<kind>"; the job API answers their result as is.
EXTENSION_JOB_PREFIX = "extension:"

__all__ = [
    "API_VERSION", "EXTENSION_JOB_PREFIX", "HOOK_POINTS", "ExtensionApi", "ExtensionHookError", "ExtraNetworkParams",
    "ExtrasStep", "GenerationRequest", "GenerationResult", "LoadedModelSummary", "NetworkCard",
    "PostprocessedImage", "SettingSpec", "UserInputError",
    "find_preview", "read_user_metadata", "write_user_metadata",
]


class ExtensionApi:
    """Handed to `setup(api)`: read the app's folders and settings, register what the extension adds."""

    def __init__(self, name: str, root: Path, *, settings, paths, flags, contributions: Contributions | None = None,
                 jobs=None, pipelines=None):
        self.name = name
        self.root = Path(root)  # the extension's own folder
        self.version = API_VERSION
        self.log = logging.getLogger(f"webui.extensions.{name}")
        self._settings = settings
        self._paths = paths
        self._flags = flags
        self.contributions = contributions or Contributions()
        self._jobs = jobs  # the app's JobQueue (None in contexts without one, e.g. some tests)
        self._pipelines = pipelines  # the app's PipelineManager, read-only here (loaded_model)

    # -- reading the app ------------------------------------------------------------------------
    def setting(self, key: str) -> Any:
        """The current value of a setting (the app's own or one the extension added)."""
        return self._settings.get(key)

    @property
    def models_dir(self) -> Path:
        """The models folder (A1111 layout: Stable-diffusion/, Lora/, ControlNet/, VAE/, ...)."""
        return Path(self._paths.models_dir)

    @property
    def data_dir(self) -> Path:
        return Path(self._paths.data_dir)

    def loaded_model(self) -> LoadedModelSummary | None:
        """What checkpoint is loaded now (name, family 'sd1' | 'sd2' | 'sdxl', architecture), None if none."""
        current = getattr(self._pipelines, "current", None) if self._pipelines is not None else None
        if current is None:
            return None
        architecture = str(getattr(current, "architecture", "") or "")
        family = "sdxl" if current.family == "sdxl" else "sd2" if architecture.startswith("sd2") else "sd1"
        checkpoint = getattr(current, "checkpoint", None)
        name = str(getattr(checkpoint, "title", None) or getattr(checkpoint, "name", None) or "")
        return LoadedModelSummary(name, family, architecture)

    def flag(self, name: str, default: Any = None) -> Any:
        """A command-line flag's value by its attribute name (`lora_dir` for --lora-dir)."""
        return getattr(self._flags, name, default)

    # -- UI -------------------------------------------------------------------------------------
    def add_tab(self, title: str, build: Callable[[], Any], *, elem_id: str | None = None) -> None:
        """A top-level tab; `build()` is called inside it and creates its components (gradio)."""
        elem_id = elem_id or _slug(title)
        self.contributions.tabs.append(TabSpec(self.name, title, elem_id, build))

    def add_section(self, title: str, build: Callable[[bool], list[Any]], *,
                    tabs: tuple[str, ...] = ("txt2img", "img2img")) -> None:
        """An always-on section in txt2img/img2img. `build(is_img2img)` returns the input components;
        their values arrive as `request.extensions[<name>]["args"]`, exactly as the API's
        `alwayson_scripts: {"<name>": {"args": [...]}}`."""
        bad = [t for t in tabs if t not in ("txt2img", "img2img")]
        if bad:
            raise ValueError(f"add_section: unknown tab {bad[0]!r} (txt2img or img2img)")
        self.contributions.sections.append(SectionSpec(self.name, title, build, tuple(tabs)))

    def add_javascript(self, path: str | Path) -> None:
        self.contributions.javascript.append(self._own_file(path))

    def add_css(self, path: str | Path) -> None:
        self.contributions.css.append(self._own_file(path))

    # -- settings -------------------------------------------------------------------------------
    def add_setting(self, key: str, default: Any, label: str, *, section: str | None = None,
                    choices: tuple[Any, ...] | None = None) -> None:
        """A setting shown in Settings, kept in config.json and listed by /sdapi/v1/options."""
        self.contributions.settings.append(
            SettingSpec(key, default, label, section or self.name, tuple(choices) if choices else None))

    # -- generation -----------------------------------------------------------------------------
    def on(self, point: str, fn: Callable[..., Any], *, order: int = 0) -> None:
        """Register a hook at one of HOOK_POINTS (see modules/extensions/hooks.py for the signatures)."""
        if point not in HOOK_POINTS:
            raise ValueError(f"unknown hook point {point!r}; known: {', '.join(HOOK_POINTS)}")
        self.contributions.hooks.append((point, fn, order))

    def add_infotext_field(self, label: str, arg: int | None = None) -> None:
        """Declare an infotext label the extension writes (through info.params): PNG Info shows it, and
        pasting the infotext into txt2img/img2img sets section component number `arg` to its value."""
        if arg is not None and (not isinstance(arg, int) or arg < 0):
            raise ValueError(f"add_infotext_field: arg must be a component index (0, 1, ...), not {arg!r}")
        self.contributions.infotext_fields.append(InfotextField(self.name, label, arg))

    def add_paste_filter(self, fn: Callable[[dict[str, Any]], None]) -> None:
        """`fn(params)` edits a parsed infotext in place before it fills the form (paste, PNG Info and
        send-to); e.g. LoRA renames a tag whose hash matches a local file. An error is reported, not raised."""
        self.contributions.paste_filters.append(fn)

    # -- providers ------------------------------------------------------------------------------
    def register(self, kind: str, name: str, provider: Any, *, aliases: tuple[str, ...] = ()) -> None:
        """Offer a named provider: 'extra_network' (`<name:...>` prompt tags), 'upscaler',
        'preprocessor' (ControlNet), 'tagger' (image captioning) or 'script'."""
        if kind not in PROVIDER_KINDS:
            raise ValueError(f"unknown provider kind {kind!r}; known: {', '.join(PROVIDER_KINDS)}")
        self.contributions.providers.append(NamedProvider(self.name, kind, name, provider, tuple(aliases)))

    def register_extra_network(self, name: str, network: Any, *, aliases: tuple[str, ...] = ()) -> None:
        self.register("extra_network", name, network, aliases=aliases)

    def register_upscaler(self, name: str, upscaler: Any) -> None:
        self.register("upscaler", name, upscaler)

    def register_preprocessor(self, name: str, preprocessor: Any) -> None:
        self.register("preprocessor", name, preprocessor)

    def register_tagger(self, name: str, tagger: Any) -> None:
        self.register("tagger", name, tagger)

    def add_extras_step(self, step: ExtrasStep) -> None:
        """A step of the Extras tab and job (1.3): an accordion with an Enable checkbox whose widgets
        (`step.build_ui()`) become `args`; `step.process(images, args)` gets and returns a list of
        PostprocessedImage (so it may split, copy or drop). See modules/postprocessing/steps.py."""
        if not isinstance(step, ExtrasStep):
            raise TypeError(f"add_extras_step: expected an ExtrasStep, not {type(step).__name__}")
        self.register("extras_step", step.name, step)

    # -- HTTP -----------------------------------------------------------------------------------
    def add_route(self, path: str, endpoint: Callable[..., Any], *, methods: tuple[str, ...] = ("GET",)) -> None:
        """An HTTP route (FastAPI-style endpoint function); protected by --api-auth like all app routes."""
        if not path.startswith("/"):
            raise ValueError(f"add_route: path {path!r} must start with '/'")
        self.contributions.routes.append(RouteSpec(self.name, path, endpoint, tuple(m.upper() for m in methods)))

    # -- jobs (since 1.1) ------------------------------------------------------------------------
    def submit_job(self, kind: str, fn: Callable[[Any], Any], *, description: str = "") -> str:
        """Queue `fn(job_ctx)` on the app's job worker (after the jobs ahead, one at a time with generation);
        returns the job id at once. `job_ctx`: `set_total(steps, batches)`, `step(i)`, `textinfo`, `check()`
        (raises when the user interrupts) and `interrupted`. The return value is the job's result and should
        be JSON data: `/sdapi/v1/jobs/{id}/result` answers it as is."""
        if self._jobs is None:
            raise RuntimeError("submit_job: this app has no job queue")
        return self._jobs.submit(f"{EXTENSION_JOB_PREFIX}{self.name}/{kind}", fn, description=description).id

    def job(self, job_id: str) -> Any:
        """The job with this id (`state`, `result`, `error`, `snapshot()` with progress and eta), or None."""
        return self._jobs.get(job_id) if self._jobs is not None else None

    def cancel_job(self, job_id: str) -> bool:
        """Remove a queued job or interrupt a running one (its `check()` raises); False if already finished."""
        return self._jobs.cancel(job_id) if self._jobs is not None else False

    # -- internals ------------------------------------------------------------------------------
    def _own_file(self, path: str | Path) -> Path:
        full = (self.root / path).resolve()
        if not full.is_relative_to(self.root.resolve()):
            raise ValueError(f"{path}: files an extension adds must be inside its folder")
        if not full.is_file():
            raise FileNotFoundError(f"{path}: no such file in {self.root}")
        return full


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.strip().lower()).strip("_") or "extension"
