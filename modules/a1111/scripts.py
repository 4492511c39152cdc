"""`modules.scripts` for A1111 extensions: the Script base class and the per-tab script runners.

A1111 behaviour kept (facts, not code): each tab (txt2img, img2img) gets its own instance of every
Script class; `show(is_img2img)` returning `AlwaysVisible` makes it run on every generation, True makes
it a choice in the Script dropdown, False hides it. A selectable script's `run(p, *args)` replaces the
normal generation. Arguments are the values of the components `ui()` returned; the API sends them as
`script_args` (selectable) or `alwayson_scripts: {"<title lower>": {"args": [...]}}`, and missing ones
take the components' defaults.
"""
from __future__ import annotations

import logging
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("webui.a1111")

AlwaysVisible = object()
_ID_CHARS = frozenset(string.ascii_lowercase + string.digits + "_")


@dataclass
class PostprocessImageArgs:
    image: Any


@dataclass
class PostprocessBatchListArgs:
    images: list[Any]


@dataclass
class OnComponent:
    component: Any


class Script:
    """A1111's Script base: subclasses override title/ui/show/run and the process* callbacks."""

    name: str | None = None
    section: str | None = None
    filename: str | None = None
    args_from: int | None = None
    args_to: int | None = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    tabname: str | None = None
    group = None
    create_group = True
    infotext_fields: list | None = None
    paste_field_names: list | None = None
    api_info = None
    controls: list | None = None
    sorting_priority = 0
    setup_for_ui_only = False

    def title(self) -> str:
        raise NotImplementedError

    def ui(self, is_img2img: bool):
        return []

    def show(self, is_img2img: bool):
        return True

    def run(self, p, *args):
        return None

    def setup(self, p, *args):
        pass

    def before_process(self, p, *args):
        pass

    def process(self, p, *args):
        pass

    def before_process_batch(self, p, *args, **kwargs):
        pass

    def after_extra_networks_activate(self, p, *args, **kwargs):
        pass

    def process_before_every_sampling(self, p, *args, **kwargs):
        pass

    def process_batch(self, p, *args, **kwargs):
        pass

    def postprocess_batch(self, p, *args, **kwargs):
        pass

    def postprocess_batch_list(self, p, pp, *args, **kwargs):
        pass

    def postprocess_image(self, p, pp, *args):
        pass

    def postprocess_maskoverlay(self, p, ppmo, *args):
        pass

    def postprocess(self, p, processed, *args):
        pass

    def before_hr(self, p, *args):
        pass

    def on_mask_blend(self, p, mba, *args):
        pass

    def before_component(self, component, **kwargs):
        pass

    def after_component(self, component, **kwargs):
        pass

    def on_before_component(self, callback, *, elem_id):
        self._component_callbacks("before").append((elem_id, callback))

    def on_after_component(self, callback, *, elem_id):
        self._component_callbacks("after").append((elem_id, callback))

    def _component_callbacks(self, when: str) -> list:
        name = f"_on_{when}_component_elem_id"
        if getattr(self, name, None) is None:
            setattr(self, name, [])
        return getattr(self, name)

    def describe(self) -> str:
        return ""

    def elem_id(self, item_id: str) -> str:
        """A1111's element id for a component of this script: script_[<tab>_]<title>_<item>. As in A1111,
        the title's spaces become '_' and then everything but a-z, 0-9 and '_' is dropped ("X/Y/Z plot" ->
        "xyz_plot"), and the tab is named only when the script shows the same way in both tabs; user CSS
        and scripts select these ids."""
        title = "".join("_" if c.isspace() else c for c in self.title().lower())
        title = "".join(c for c in title if c in _ID_CHARS)
        try:
            in_both = self.show(True) == self.show(False)
        except Exception:  # a show() that fails here fails again (and is reported) when it is loaded
            in_both = True
        tab = ("img2img_" if self.is_img2img else "txt2img_") if in_both else ""
        return f"script_{tab}{title}_{item_id}"


def title_key(script: Script) -> str:
    """The name the API uses for a script: its title in lower case (A1111)."""
    return script.title().lower()


@dataclass
class ScriptArgSpec:
    """One ui() component as /sdapi/v1/script-info describes it."""

    label: str | None = None
    value: Any = None
    minimum: Any = None
    maximum: Any = None
    step: Any = None
    choices: list | None = None


@dataclass
class LoadedScript:
    """A Script instance for one tab with the extension it came from and its ui() defaults."""

    script: Script
    extension: str
    alwayson: bool
    defaults: list[Any] = field(default_factory=list)
    arg_specs: list[ScriptArgSpec] = field(default_factory=list)
    ui_built: bool = False

    @property
    def title(self) -> str:
        return self.script.title()

    @property
    def key(self) -> str:
        return title_key(self.script)


class ScriptRunner:
    """The scripts of one tab: always-on ones (run on every generation) and selectable ones."""

    def __init__(self, tab: str):
        self.tab = tab
        self.is_img2img = tab == "img2img"
        self.scripts: list[LoadedScript] = []

    @property
    def alwayson_scripts(self) -> list[Script]:
        return [s.script for s in self.scripts if s.alwayson]

    @property
    def selectable_scripts(self) -> list[Script]:
        return [s.script for s in self.scripts if not s.alwayson]

    @property
    def titles(self) -> list[str]:
        return [s.title for s in self.scripts if not s.alwayson]

    def add(self, script_class: type, extension: str, filename: str,
            report: Callable[[str, str], None]) -> LoadedScript | None:
        """Instantiate a Script class for this tab; None when show() hides it or it fails."""
        try:
            script = script_class()
            script.filename = filename
            script.is_txt2img = not self.is_img2img
            script.is_img2img = self.is_img2img
            script.tabname = self.tab
            visibility = script.show(self.is_img2img)
            title = script.title()
        except Exception as exc:
            report(extension, f"{script_class.__name__} ({self.tab}): {type(exc).__name__}: {exc}")
            return None
        if visibility is False or visibility is None:
            return None
        script.alwayson = visibility is AlwaysVisible
        if not isinstance(title, str) or not title:
            report(extension, f"{script_class.__name__}: title() must return a non-empty string")
            return None
        loaded = LoadedScript(script, extension, script.alwayson)
        self.scripts.append(loaded)
        self.scripts.sort(key=lambda s: (not s.alwayson, s.script.sorting_priority))
        return loaded

    def find(self, name: str) -> LoadedScript | None:
        """A script by title, case-insensitive (the API sends lower-case titles)."""
        wanted = (name or "").strip().lower()
        for loaded in self.scripts:
            if loaded.key == wanted:
                return loaded
        return None

    def layout(self) -> list[LoadedScript]:
        """Scripts in argument order: index 0 of p.script_args is the selected script (A1111), then each
        script's own args in this order; sets args_from/args_to on each script."""
        position = 1
        for loaded in self.scripts:
            loaded.script.args_from = position
            position += len(loaded.defaults)
            loaded.script.args_to = position
        return self.scripts
