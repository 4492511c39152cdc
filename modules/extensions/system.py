"""Start-up of the extension system: find, load and keep what extensions contributed (`ctx.extensions`).

The A1111 adapter is handed in as a factory, so this package never imports it: the core knows only
"something loads A1111-style folders", and modules/context.py decides that it is modules.a1111.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modules.extensions import manage
from modules.extensions.loader import ExtensionInfo, ExtensionLoader
from modules.extensions.registry import ExtensionRegistry
from modules.settings import SettingSpec

log = logging.getLogger("webui.extensions")

EXTENSION_SETTINGS = (
    SettingSpec(manage.DISABLED_SETTING, [], "Disabled extensions", "extensions"),
    SettingSpec("extensions_index_url", "", "Extension index URL (empty: the bundled list)", "extensions"),
)


@dataclass
class ExtensionSystem:
    """The loaded extensions of one app: their infos (as listed in the tab), the registry, the adapter."""

    registry: ExtensionRegistry
    infos: list[ExtensionInfo] = field(default_factory=list)
    compat: Any = None  # the A1111 adapter, when A1111-style extensions can be loaded

    def info(self, name: str) -> ExtensionInfo | None:
        return next((i for i in self.infos if i.name == name), None)

    @property
    def hooks(self):
        return self.registry.hooks

    @property
    def errors(self):
        return self.registry.errors

    def error_text(self, name: str) -> str:
        info = self.info(name)
        messages = list(self.registry.errors.of(name))
        if info is not None and info.error and info.error not in messages:
            messages.insert(0, info.error)
        return "; ".join(dict.fromkeys(messages))


def register_settings(settings) -> None:
    for spec in EXTENSION_SETTINGS:
        settings.register(spec)


def load_extensions(ctx, *, app_version: str,
                    a1111_factory: Callable[[Any, ExtensionRegistry], Any] | None = None) -> ExtensionSystem:
    """Discover and load every enabled extension; never raises for an extension's own failure."""
    register_settings(ctx.settings)
    registry = ExtensionRegistry(ctx.settings)
    compat = a1111_factory(ctx, registry) if a1111_factory is not None else None
    infos = manage.list_extensions(ctx.paths, ctx.settings, ctx.flags)
    loader = ExtensionLoader(registry, settings=ctx.settings, paths=ctx.paths, flags=ctx.flags,
                             app_version=app_version,
                             a1111_loader=compat.load_extension if compat is not None else None,
                             jobs=getattr(ctx, "jobs", None), pipelines=getattr(ctx, "pipelines", None))
    loader.load_all(infos)
    if compat is not None:
        compat.finish_loading()
    loaded = [i.name for i in infos if i.status == "loaded"]
    failed = [i.name for i in infos if i.status == "failed"]
    log.info("Extensions: %d loaded%s", len(loaded), f", failed: {', '.join(failed)}" if failed else "")
    return ExtensionSystem(registry, infos, compat)
