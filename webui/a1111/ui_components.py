"""A1111's `modules.ui_components` and the common `modules.ui` helpers, for extension code.

Built on the Gradio 3 compatible classes, so extension code that mixes them with `gr.*` sees one
consistent set. A1111 styles these through CSS classes; we keep the class names.
"""
from __future__ import annotations

import types
from typing import Any

import gradio as gr

REFRESH_SYMBOL = "\U0001f504"  # 🔄
SWITCH_SYMBOL = "\u21c5"  # ⇅


def build_ui_components(g) -> types.ModuleType:
    """`modules.ui_components` over the Gradio 3 compatible module `g`."""
    from webui.a1111.gradio3 import plain_subclass

    mod = types.ModuleType("modules.ui_components")

    def with_classes(default: list[str]):
        def init(self, *args: Any, **kwargs: Any):
            classes = kwargs.pop("elem_classes", None) or []
            classes = [classes] if isinstance(classes, str) else list(classes)
            kwargs["elem_classes"] = [*classes, *default]
            type(self).__mro__[1].__init__(self, *args, **kwargs)
        return init

    def tool_init(self, *args: Any, **kwargs: Any):
        """A small square button (A1111's refresh and swap buttons)."""
        classes = kwargs.pop("elem_classes", None) or []
        classes = [classes] if isinstance(classes, str) else list(classes)
        kwargs["elem_classes"] = [*classes, "tool"]
        kwargs.setdefault("scale", 0)
        kwargs.setdefault("min_width", 40)
        g.Button.__init__(self, *args, **kwargs)

    def multi_init(self, *args: Any, **kwargs: Any):
        kwargs["multiselect"] = True
        g.Dropdown.__init__(self, *args, **kwargs)

    def editable_init(self, *args: Any, **kwargs: Any):
        kwargs["allow_custom_value"] = True
        g.Dropdown.__init__(self, *args, **kwargs)

    classes = {
        "FormRow": plain_subclass(g.Row, "FormRow", {"__init__": with_classes(["form"])}),
        "FormColumn": plain_subclass(g.Column, "FormColumn", {"__init__": with_classes(["form"])}),
        "FormGroup": plain_subclass(g.Group, "FormGroup", {}),
        "ResizeHandleRow": plain_subclass(g.Row, "ResizeHandleRow", {}),
        "FormHTML": plain_subclass(g.HTML, "FormHTML", {}),
        "ToolButton": plain_subclass(g.Button, "ToolButton", {"__init__": tool_init}),
        "DropdownMulti": plain_subclass(g.Dropdown, "DropdownMulti", {"__init__": multi_init}),
        "DropdownEditable": plain_subclass(g.Dropdown, "DropdownEditable", {"__init__": editable_init}),
        "InputAccordion": input_accordion_class(g, plain_subclass),
    }
    for name, cls in classes.items():
        setattr(mod, name, cls)
    return mod


def input_accordion_class(g, plain_subclass) -> type:
    """A checkbox whose value says whether the section is on, with an accordion for the controls:
    `with InputAccordion(False, label="Enable") as enabled: ...` (A1111's API)."""

    def __init__(self, value: bool = False, **kwargs: Any):
        label = kwargs.get("label", "")
        self._accordion_kwargs = {"label": label, "open": kwargs.pop("open", bool(value))}
        elem_id = kwargs.get("elem_id")
        if elem_id:
            self._accordion_kwargs["elem_id"] = f"{elem_id}-accordion"
        g.Checkbox.__init__(self, value=value, **kwargs)
        self._accordion = None

    def __enter__(self):
        self._accordion = gr.Accordion(**self._accordion_kwargs)
        self._accordion.__enter__()
        return self

    def __exit__(self, *exc):
        return self._accordion.__exit__(*exc)

    def extra(self):
        return gr.Column(elem_classes=["input-accordion-extra"], min_width=0)

    return plain_subclass(g.Checkbox, "InputAccordion", {"__init__": __init__, "__enter__": __enter__,
                                                         "__exit__": __exit__, "extra": extra})


def build_ui_module(g, ui_components: types.ModuleType, name: str = "modules.ui") -> types.ModuleType:
    """The few `modules.ui` / `modules.ui_common` helpers extensions call."""
    mod = types.ModuleType(name)

    def create_refresh_button(refresh_component, refresh_method, refreshed_args, elem_id):
        components = refresh_component if isinstance(refresh_component, list) else [refresh_component]

        def refresh():
            refresh_method()
            args = refreshed_args() if callable(refreshed_args) else refreshed_args
            return [gr.update(**(args or {})) for _ in components]

        button = ui_components.ToolButton(value=REFRESH_SYMBOL, elem_id=elem_id)
        button.click(fn=refresh, inputs=[], outputs=components)
        return button

    mod.create_refresh_button = create_refresh_button
    mod.refresh_symbol = REFRESH_SYMBOL
    mod.switch_values_symbol = SWITCH_SYMBOL
    mod.gr_show = lambda visible=True: gr.update(visible=visible)
    mod.ToolButton = ui_components.ToolButton
    return mod
