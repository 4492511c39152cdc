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
    mod = types.ModuleType("modules.ui_components")

    class FormRow(g.Row):
        def __init__(self, *args: Any, **kwargs: Any):
            kwargs.setdefault("elem_classes", ["form"])
            super().__init__(*args, **kwargs)

    class FormColumn(g.Column):
        def __init__(self, *args: Any, **kwargs: Any):
            kwargs.setdefault("elem_classes", ["form"])
            super().__init__(*args, **kwargs)

    class FormGroup(g.Group):
        pass

    class ResizeHandleRow(g.Row):
        pass

    class FormHTML(g.HTML):
        pass

    class ToolButton(g.Button):
        """A small square button (A1111's 🔄 / ⇅ buttons)."""

        def __init__(self, *args: Any, **kwargs: Any):
            classes = kwargs.pop("elem_classes", []) or []
            classes = [classes] if isinstance(classes, str) else list(classes)
            kwargs["elem_classes"] = [*classes, "tool"]
            kwargs.setdefault("scale", 0)
            kwargs.setdefault("min_width", 40)
            super().__init__(*args, **kwargs)

    class DropdownMulti(g.Dropdown):
        def __init__(self, *args: Any, **kwargs: Any):
            kwargs["multiselect"] = True
            super().__init__(*args, **kwargs)

    class DropdownEditable(g.Dropdown):
        def __init__(self, *args: Any, **kwargs: Any):
            kwargs["allow_custom_value"] = True
            super().__init__(*args, **kwargs)

    class InputAccordion(g.Checkbox):
        """A checkbox whose value says whether the section is on, with an accordion for the controls:
        `with InputAccordion(False, label="Enable") as enabled: ...` (A1111's API)."""

        def __init__(self, value: bool = False, **kwargs: Any):
            label = kwargs.get("label", "")
            self._accordion_kwargs = {"label": label, "open": kwargs.pop("open", bool(value))}
            elem_id = kwargs.get("elem_id")
            if elem_id:
                self._accordion_kwargs["elem_id"] = f"{elem_id}-accordion"
            super().__init__(value=value, **kwargs)
            self._accordion = None

        def __enter__(self):
            self._accordion = gr.Accordion(**self._accordion_kwargs)
            self._accordion.__enter__()
            return self

        def __exit__(self, *exc):
            return self._accordion.__exit__(*exc)

        def extra(self):
            return gr.Column(elem_classes=["input-accordion-extra"], min_width=0)

    for cls in (FormRow, FormColumn, FormGroup, ResizeHandleRow, FormHTML, ToolButton, DropdownMulti,
                DropdownEditable, InputAccordion):
        setattr(mod, cls.__name__, cls)
    return mod


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
