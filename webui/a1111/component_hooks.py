"""A1111's before_component / after_component: extensions place their controls next to ours by id
(`after_component` of `txt2img_width`, `on_after_component(callback, elem_id=...)`).

A1111 wraps every gradio component's constructor for the whole process. Here the wrapping is a
context manager around building the page only, and it is undone on exit; while it is active, each
component with an elem_id is announced to the scripts of the tab being built and to the
on_before_component / on_after_component callbacks, which may create components at that spot.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import gradio as gr

from modules.a1111.scripts import OnComponent
from modules.extensions.hooks import describe_exception

log = logging.getLogger("webui.a1111")
MAX_DEPTH = 3  # components a callback creates announce themselves too, but never without end


class ComponentAnnouncer:
    """Calls the A1111 component hooks of one app while the page is built."""

    def __init__(self, compat):
        self.compat = compat
        self.tab: str | None = None
        self._depth = threading.local()

    @contextlib.contextmanager
    def building_tab(self, tab: str | None):
        previous, self.tab = self.tab, tab
        try:
            yield
        finally:
            self.tab = previous

    def _scripts(self):
        runner = self.compat.runners.get(self.tab) if self.tab else None
        return list(runner.scripts) if runner is not None else []

    def announce(self, when: str, component, kwargs: dict[str, Any]) -> None:
        depth = getattr(self._depth, "value", 0)
        if depth >= MAX_DEPTH:
            return
        self._depth.value = depth + 1
        try:
            elem_id = kwargs.get("elem_id") or getattr(component, "elem_id", None)
            for loaded in self._scripts():
                script = loaded.script
                self._call(loaded.extension, f"{loaded.title}.{when}_component",
                           getattr(script, f"{when}_component"), component, **kwargs)
                for wanted, callback in getattr(script, f"_on_{when}_component_elem_id", None) or []:
                    if elem_id and wanted == elem_id:
                        self._call(loaded.extension, f"{loaded.title}.on_{when}_component", callback,
                                   OnComponent(component))
            for extension, fn in self.compat.callbacks.registered(f"{when}_component"):
                self._call(extension, f"on_{when}_component", fn, component, **kwargs)
        finally:
            self._depth.value = depth

    def _call(self, extension: str, what: str, fn, *args, **kwargs) -> None:
        try:
            with self.compat.running(extension):
                fn(*args, **kwargs)
        except Exception as exc:
            self.compat.report(extension, f"{what}: {describe_exception(exc)}")


@contextlib.contextmanager
def announcing(announcer: ComponentAnnouncer | None):
    """Announce components created inside the block (restores gradio's constructor on exit)."""
    if announcer is None or not _has_listeners(announcer):
        yield
        return
    base = gr.components.Component
    original = base.__init__

    def init(self, *args, **kwargs):
        if kwargs.get("elem_id"):
            announcer.announce("before", None, kwargs)
        original(self, *args, **kwargs)
        if getattr(self, "elem_id", None):
            announcer.announce("after", self, {**kwargs, "elem_id": self.elem_id})

    base.__init__ = init
    try:
        yield
    finally:
        base.__init__ = original


def _has_listeners(announcer: ComponentAnnouncer) -> bool:
    compat = announcer.compat
    if compat.callbacks.registered("before_component") or compat.callbacks.registered("after_component"):
        return True
    from modules.a1111.scripts import Script

    for runner in compat.runners.values():
        for loaded in runner.scripts:
            script = loaded.script
            overrides = (type(script).before_component is not Script.before_component
                         or type(script).after_component is not Script.after_component)
            if overrides or getattr(script, "_on_before_component_elem_id", None) or \
                    getattr(script, "_on_after_component_elem_id", None):
                return True
    return False
