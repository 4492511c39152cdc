"""`shared.opts` and `shared.OptionInfo` as A1111 extensions use them, stored in our Settings.

`opts.some_key` reads a setting, `opts.some_key = v` writes it (validated and saved like any other),
`opts.add_option(key, OptionInfo(...))` adds a setting that shows in Settings, is kept in config.json
and is listed by /sdapi/v1/options. `OptionInfo` keeps A1111's chaining (`.info()`,
`.needs_reload_ui()`, ...); the gradio component it names is kept for the Settings tab to use.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from modules.settings import SettingSpec

log = logging.getLogger("webui.a1111")


class OptionInfo:
    """One A1111 option: default, label, gradio component and its arguments, section, onchange."""

    def __init__(self, default: Any = None, label: str = "", component: Any = None,
                 component_args: Any = None, onchange: Callable[[], Any] | None = None,
                 section: tuple[str, str] | None = None, refresh: Callable[[], Any] | None = None,
                 comment_before: str = "", comment_after: str = "", infotext: str | None = None,
                 restrict_api: bool = False, category_id: str | None = None):
        self.default = default
        self.label = label
        self.component = component
        self.component_args = component_args
        self.onchange = onchange
        self.section = section
        self.refresh = refresh
        self.comment_before = comment_before
        self.comment_after = comment_after
        self.infotext = infotext
        self.restrict_api = restrict_api
        self.category_id = category_id
        self.do_not_save = False
        self.reload_ui = False
        self.restart = False

    def link(self, label: str, url: str) -> "OptionInfo":
        self.comment_before += f"[<a href='{url}' target='_blank'>{label}</a>]"
        return self

    def js(self, label: str, js_func: str) -> "OptionInfo":
        self.comment_before += f"[<a onclick='{js_func}(); return false'>{label}</a>]"
        return self

    def info(self, info: str) -> "OptionInfo":
        self.comment_after += f"<span class='info'>({info})</span>"
        return self

    def html(self, html: str) -> "OptionInfo":
        self.comment_after += html
        return self

    def needs_restart(self) -> "OptionInfo":
        self.restart = True
        self.comment_after += " <span class='info'>(requires restart)</span>"
        return self

    def needs_reload_ui(self) -> "OptionInfo":
        self.reload_ui = True
        self.comment_after += " <span class='info'>(requires Reload UI)</span>"
        return self

    def choices(self) -> tuple[Any, ...] | None:
        """Choices from `component_args` (a dict or a callable giving one), as A1111's Radio/Dropdown use."""
        args = self.component_args() if callable(self.component_args) else self.component_args
        values = (args or {}).get("choices") if isinstance(args, dict) else None
        if not values:
            return None
        # gradio choices may be (label, value) pairs
        return tuple(v[1] if isinstance(v, (tuple, list)) and len(v) == 2 else v for v in values)


def options_section(section_identifier: tuple[str, str], options: dict[str, OptionInfo]) -> dict[str, OptionInfo]:
    """Set the section of every option in `options` (A1111's helper for shared.options_templates)."""
    for value in options.values():
        value.section = section_identifier
    return options


def section_label(section: Any, fallback: str) -> str:
    if isinstance(section, (tuple, list)) and section:
        return str(section[-1] or section[0])
    return str(section) if section else fallback


class Opts:
    """A1111's `shared.opts` over our Settings store (one per app)."""

    _OWN = ("_settings", "_extension_of", "data_labels", "_listeners")

    def __init__(self, settings, extension_of: Callable[[], str | None] = lambda: None):
        object.__setattr__(self, "_settings", settings)
        object.__setattr__(self, "_extension_of", extension_of)
        object.__setattr__(self, "data_labels", {})  # key -> OptionInfo, for options extensions added
        object.__setattr__(self, "_listeners", {})
        # Changes from anywhere (Settings tab, /sdapi/v1/options, opts.x = v) reach onchange callbacks.
        settings.on_change(lambda key, value: self._run_onchange(key))

    # A1111 code reads opts.data[...] and opts.data.get(...)
    @property
    def data(self) -> dict[str, Any]:
        return self._settings.as_dict()

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        values = self._settings.as_dict()
        if key in values:
            return values[key]
        info = self.data_labels.get(key)
        if info is not None:
            return info.default
        raise AttributeError(f"shared.opts has no option {key!r}")

    def __setattr__(self, key: str, value: Any) -> None:
        if key in self._OWN:
            object.__setattr__(self, key, value)
            return
        self.set(key, value)

    def set(self, key: str, value: Any, is_api: bool = False, run_callbacks: bool = True) -> bool:
        """Store a value (validated like the Settings tab does); True when it changed."""
        known = {spec.key for spec in self._settings.specs()}
        if key not in known:
            self._settings.register(SettingSpec(key, value, key, "extensions"))
        return bool(self._settings.update({key: value}))

    def get_default(self, key: str) -> Any:
        for spec in self._settings.specs():
            if spec.key == key:
                return spec.default
        return None

    def add_option(self, key: str, info: OptionInfo) -> None:
        """Register an extension's option as one of our settings (A1111's on_ui_settings does this)."""
        self.data_labels[key] = info
        extension = self._extension_of() or "extensions"
        spec = SettingSpec(key, info.default, info.label or key, section_label(info.section, extension),
                           info.choices())
        self._settings.register(spec)
        if info.onchange is not None:
            self.onchange(key, info.onchange, call=False)

    def onchange(self, key: str, func: Callable[[], Any], call: bool = True) -> None:
        self._listeners.setdefault(key, []).append(func)
        if call:
            func()

    def _run_onchange(self, key: str) -> None:
        for func in self._listeners.get(key, ()):
            try:
                func()
            except Exception as exc:  # an extension's callback must not break saving a setting
                log.error("onchange callback for %s failed: %s", key, exc)

    def save(self, filename: str | None = None) -> None:
        """Our settings are saved on every change; kept for A1111 code that calls opts.save(...)."""

    def same_type(self, x: Any, y: Any) -> bool:
        return x is None or y is None or type(x) is type(y)

    def dumpjson(self) -> str:
        import json

        return json.dumps(self.data)

    def __contains__(self, key: str) -> bool:
        return key in self._settings.as_dict()
