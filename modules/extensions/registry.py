"""What extensions contributed, as data: tabs, sections, settings, routes, networks, upscalers, ...

An extension's `setup(api)` fills its own `Contributions`; only when setup returns without error are
they merged into the app's `ExtensionRegistry`, so a half-set-up extension leaves nothing behind. The
core reads hooks, settings and extra networks from here; the web layer reads tabs, sections, routes,
scripts and styles. Nothing here imports gradio or fastapi: UI builders are plain callables that the
web layer calls inside its own layout.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modules.extensions.hooks import ExtensionErrors, HookRegistry
from modules.settings import SettingSpec


@dataclass(frozen=True)
class TabSpec:
    """A top-level UI tab: `build()` creates its components inside the tab (A1111 id: tab_<elem_id>)."""

    extension: str
    title: str
    elem_id: str
    build: Callable[[], Any]


@dataclass(frozen=True)
class SectionSpec:
    """An always-on section under txt2img/img2img. `build(is_img2img)` returns the input components whose
    values reach the extension with each request, in order, as `request.extensions[extension]["args"]`."""

    extension: str
    title: str
    build: Callable[[bool], list[Any]]
    tabs: tuple[str, ...] = ("txt2img", "img2img")


@dataclass(frozen=True)
class RouteSpec:
    """An HTTP route the extension serves; it sits behind --api-auth like every app route."""

    extension: str
    path: str
    endpoint: Callable[..., Any]
    methods: tuple[str, ...] = ("GET",)


@dataclass(frozen=True)
class InfotextField:
    """A `Label: value` pair the extension writes into infotext. `arg` is the index of the section
    component that pasting the infotext sets (None: shown by PNG Info, not pasted)."""

    extension: str
    label: str
    arg: int | None = None


@dataclass(frozen=True)
class NamedProvider:
    """A named thing an extension offers: an upscaler, a ControlNet preprocessor, a tagger, a network."""

    extension: str
    kind: str
    name: str
    provider: Any
    aliases: tuple[str, ...] = ()


@dataclass
class Contributions:
    """Everything one extension's setup registered, before it is merged into the registry."""

    tabs: list[TabSpec] = field(default_factory=list)
    sections: list[SectionSpec] = field(default_factory=list)
    settings: list[SettingSpec] = field(default_factory=list)
    hooks: list[tuple[str, Callable[..., Any], int]] = field(default_factory=list)
    routes: list[RouteSpec] = field(default_factory=list)
    infotext_fields: list[InfotextField] = field(default_factory=list)
    paste_filters: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)
    providers: list[NamedProvider] = field(default_factory=list)
    javascript: list[Path] = field(default_factory=list)
    css: list[Path] = field(default_factory=list)


# "extras_step": a modules.postprocessing.steps.ExtrasStep (api.add_extras_step, since API 1.3)
PROVIDER_KINDS = ("extra_network", "upscaler", "preprocessor", "tagger", "script", "extras_step")


class ExtensionRegistry:
    """The merged contributions of all loaded extensions, plus their hooks and errors."""

    def __init__(self, settings=None):
        self.errors = ExtensionErrors()
        self.hooks = HookRegistry(self.errors, self)
        self._settings = settings
        self._by_extension: dict[str, Contributions] = {}
        self._lock = threading.Lock()

    def commit(self, extension: str, contributions: Contributions) -> None:
        """Merge one extension's contributions (after its setup succeeded)."""
        if self._settings is not None:
            for spec in contributions.settings:
                self._settings.register(spec)
        for point, fn, order in contributions.hooks:
            self.hooks.add(point, extension, fn, order)
        with self._lock:
            self._by_extension[extension] = contributions

    def extensions(self) -> list[str]:
        with self._lock:
            return list(self._by_extension)

    def _all(self, attribute: str) -> list[Any]:
        with self._lock:
            return [item for c in self._by_extension.values() for item in getattr(c, attribute)]

    def tabs(self) -> list[TabSpec]:
        return self._all("tabs")

    def sections(self, tab: str) -> list[SectionSpec]:
        return [s for s in self._all("sections") if tab in s.tabs]

    def routes(self) -> list[RouteSpec]:
        return self._all("routes")

    def infotext_fields(self) -> list[InfotextField]:
        return self._all("infotext_fields")

    def run_paste_filters(self, params: dict[str, Any]) -> None:
        """Extensions' paste filters on a parsed infotext, in load order; one that raises is skipped."""
        with self._lock:
            filters = [(name, fn) for name, c in self._by_extension.items() for fn in c.paste_filters]
        for name, fn in filters:
            try:
                fn(params)
            except Exception as exc:
                self.errors.add(name, f"paste filter: {type(exc).__name__}: {exc}")

    def javascript(self) -> list[Path]:
        return self._all("javascript")

    def css(self) -> list[Path]:
        return self._all("css")

    def providers(self, kind: str) -> list[NamedProvider]:
        return [p for p in self._all("providers") if p.kind == kind]

    def provider(self, kind: str, name: str) -> NamedProvider | None:
        """The provider of `kind` called `name` (or one of its aliases), case-insensitive; first wins."""
        wanted = name.lower()
        for p in self.providers(kind):
            if p.name.lower() == wanted or wanted in (a.lower() for a in p.aliases):
                return p
        return None
