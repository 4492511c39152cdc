"""What the tabs share while the page is built: ui-config.json defaults, the main Tabs, and send-to targets.

Tabs are built one after another, but a button in txt2img sends to img2img, which does not exist yet when
txt2img is built. So tabs register their targets and send buttons here, and `wire_sends` connects them
once every tab exists.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from modules.settings import write_json_atomic

log = logging.getLogger("webui.ui")

# Attributes of a widget that ui-config.json may override, as A1111 stores them ("tab/Label/value").
_STORED_ATTRS = ("value", "minimum", "maximum", "step")


class UiDefaults:
    """Default widget values from ui-config.json (A1111 keys `<tab>/<label>/<attr>`), read at build.

    Every widget made through `make` is remembered, so the Settings "Defaults" page can write the values
    the user set on the page back to the file, and a page load after that shows them (Reload UI).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.widgets: dict[str, gr.components.Component] = {}  # "<tab>/<label>" -> widget
        self.warning: str | None = None
        self.stored = self._read()
        self._built_mtime = self._mtime()

    def _mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                return data
            raise ValueError("top level is not an object")
        except (OSError, ValueError) as exc:
            # A broken file must not stop the UI: defaults it is, and the log says why.
            self.warning = f"{self.path.name} is unreadable ({exc}); using built-in defaults"
            log.warning(self.warning)
            return {}

    def make(self, cls: type, tab: str, label: str, **kwargs):
        """Create widget `cls(label=label, **kwargs)` with values stored under `<tab>/<label>/...` applied."""
        key = f"{tab}/{label}"
        for attr in _STORED_ATTRS:
            stored = self.stored.get(f"{key}/{attr}")
            if stored is None or (attr != "value" and attr not in kwargs):
                continue
            if attr == "value" and "choices" in kwargs and kwargs["choices"] and stored not in _choice_values(
                    kwargs["choices"]) and not isinstance(stored, list):
                continue  # a stored choice that no longer exists (e.g. a sampler renamed) is ignored
            kwargs[attr] = stored
        widget = cls(label=label, **kwargs)
        self.widgets[key] = widget
        return widget

    def stamp(self) -> str:
        """What `current_values` depends on: the file's modification time."""
        return str(self._mtime())

    def keys(self) -> list[str]:
        return list(self.widgets)

    def current_values(self) -> list:
        """For a page load: the stored values when ui-config.json changed since the build, else gr.skip()."""
        if self._mtime() == self._built_mtime:
            return [gr.skip()] * len(self.widgets)
        self.stored = self._read()
        return [self.stored.get(f"{key}/value", gr.skip()) for key in self.widgets]

    def save_values(self, values: dict[str, Any]) -> list[str]:
        """Store `<tab>/<label>/value` for the given widget values; returns the keys that changed."""
        changed = []
        data = dict(self.stored)
        for key, value in values.items():
            if data.get(f"{key}/value") != value:
                data[f"{key}/value"] = value
                changed.append(key)
        if changed:
            write_json_atomic(self.path, data)
            self.stored = data
        return changed


def _guarded(fn: Callable[[], list], count: int) -> Callable[[], list]:
    """`fn` whose error is logged and gives `count` skips: one broken refresh must not break the page load."""
    def run() -> list:
        try:
            return list(fn())
        except Exception:
            log.exception("page-load refresh failed")
            return [gr.skip()] * count
    return run


def _safe_stamp(stamp: Callable[[], str]) -> str:
    try:
        return str(stamp())
    except Exception:  # noqa: BLE001 - an unreadable stamp refreshes the page (safe), it does not break it
        log.exception("page-load stamp failed")
        return f"error {time.monotonic()}"  # never equal to the build's: the page refreshes


def _choice_values(choices) -> list:
    return [c[1] if isinstance(c, tuple) else c for c in choices]


@dataclass
class SendTarget:
    """Where a "Send to ..." lands: a main tab (and sub-tab), an image widget, and the form fields."""

    name: str
    tab_id: str
    image: gr.components.Component | None = None
    fields: dict[str, gr.components.Component] = field(default_factory=dict)
    subtabs: gr.Tabs | None = None
    subtab_id: str | None = None
    # The sub-tab choice is also kept in a State (a tab switched by code fires no select event).
    mode_state: gr.State | None = None


@dataclass
class SendButton:
    """A button that sends (image, infotext) from `source(*inputs)` to target `target`."""

    button: gr.Button
    target: str
    source: Callable[..., tuple[Any, str]]
    inputs: list[gr.components.Component]


class UiBuild:
    """Shared state of one page build; passed to every tab's `build(ctx, ui)`."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.defaults = UiDefaults(ctx.paths.ui_config_file)
        self.tabs: gr.Tabs | None = None
        self.targets: dict[str, SendTarget] = {}
        self.sends: list[SendButton] = []
        self._loaders: list[tuple[Callable[[], list], list]] = []
        self._stamped: list[tuple[Callable[[], str], Callable[[], list], list]] = []

    def on_load(self, fn: Callable[[], list], outputs: list, stamp: Callable[[], str] | None = None) -> None:
        """Run `fn` when a page loads; its list of values goes to `outputs`. All loaders share one event.

        With `stamp` (a cheap fingerprint of what `fn` reads), `fn` runs only when the page-load stamp differs
        from the one taken at build: the page then waits on no event with these outputs. Gradio's front end
        walks the whole component tree once per output of every event that ever ran, at each status change
        of any event, so 140 page-load outputs cost seconds at load and slow every later click."""
        if stamp is None:
            self._loaders.append((fn, list(outputs)))
        else:
            self._stamped.append((stamp, fn, list(outputs)))

    def wire_load(self, blocks: gr.Blocks) -> None:
        """One load event for every registered loader (one round trip per page load, not one each); each
        stamped loader gets a State that the load event sets and whose change runs the loader."""
        loaders = list(self._loaders)
        for stamp, fn, outs in self._stamped:
            state = gr.State(_safe_stamp(stamp))
            loaders.append((lambda stamp=stamp: [_safe_stamp(stamp)], [state]))
            # A State's change fires only when the value the load event set differs from the build's.
            state.change(_guarded(fn, len(outs)), None, outs, show_progress="hidden", queue=False)
        if not loaders:
            return
        outputs = [widget for _, outs in loaders for widget in outs]
        guarded = [_guarded(fn, len(outs)) for fn, outs in loaders]

        def on_load():
            values = []
            for fn in guarded:
                values += fn()
            return values

        # Queued: only the queue's answer carries the changed States that fire the stamped refreshes.
        blocks.load(on_load, None, outputs, show_progress="hidden", queue=True)

    def add_target(self, target: SendTarget) -> None:
        self.targets[target.name] = target

    def add_send(self, button: gr.Button, target: str, source: Callable[..., tuple[Any, str]],
                 inputs: list[gr.components.Component]) -> None:
        self.sends.append(SendButton(button, target, source, inputs))

    def wire_sends(self) -> None:
        """Connect every send button to its target; call once all tabs are built."""
        from webui.ui import forms
        from webui.ui.components.sendto import wire

        for send in self.sends:
            target = self.targets.get(send.target)
            if target is None:
                log.warning("send-to target %r is missing; its button does nothing", send.target)
                continue
            wire(send, target, self.tabs, forms.paste_filter_of(self.ctx))
