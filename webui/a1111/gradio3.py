"""`import gradio as gr` for A1111 extension code: Gradio 6 with the Gradio 3.41 calls A1111 allows.

A1111 pins Gradio 3.41; many extensions still write `gr.Box()`, `gr.Textbox.update(...)`,
`component.style(...)`, `button.click(..., _js="...")`, positional `gr.Textbox("", 3)` or
`gr.Image(source="upload", tool="sketch")`. Gradio 6 refuses all of these. Extension code gets this
module instead of gradio: every component class is a thin subclass that translates those calls (and
drops arguments Gradio 6 no longer has, with a debug log), and `Box` is a `Group`. Our own UI code
never sees it; the classes are real gradio components, so they render and behave as usual.
"""
from __future__ import annotations

import functools
import inspect
import logging
import types
from typing import Any

import gradio as gr

log = logging.getLogger("webui.a1111.gradio3")

# Gradio 3.41's positional parameter order for the components extensions build positionally.
GRADIO3_POSITIONAL: dict[str, tuple[str, ...]] = {
    "Textbox": ("value", "lines", "max_lines", "placeholder", "label"),
    "Slider": ("minimum", "maximum", "value", "step"),
    "Checkbox": ("value", "label"),
    "Dropdown": ("choices", "value", "type", "multiselect", "max_choices", "label"),
    "Radio": ("choices", "value", "type", "label"),
    "CheckboxGroup": ("choices", "value", "type", "label"),
    "Number": ("value", "label"),
    "Button": ("value", "variant"),
    "HTML": ("value", "label"),
    "Markdown": ("value",),
    "Image": ("value", "shape", "height", "width", "image_mode", "invert_colors", "source", "tool", "type", "label"),
    "Gallery": ("value", "label"),
    "ColorPicker": ("value", "label"),
    "File": ("value", "file_count", "file_types", "type", "label"),
    "Accordion": ("label", "open"),
    "Tab": ("label",),
    "Column": ("scale", "min_width", "variant"),
    "Row": ("variant",),
}
BUTTON_VARIANTS = {"primary", "secondary", "stop", "huggingface"}
SHOW_PROGRESS = {True: "full", False: "hidden", "full": "full", "minimal": "minimal", "hidden": "hidden"}


def translate_event_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Gradio 3 listener arguments in Gradio 6 terms (`_js` -> `js`, bool show_progress, ...)."""
    kwargs = dict(kwargs)
    if "_js" in kwargs:
        kwargs["js"] = kwargs.pop("_js")
    if "show_progress" in kwargs:
        kwargs["show_progress"] = SHOW_PROGRESS.get(kwargs["show_progress"], "full")
    for gone in ("status_tracker", "every", "_preprocess", "_postprocess", "api_name_"):
        kwargs.pop(gone, None)
    if kwargs.get("api_name") is False:
        kwargs.pop("api_name")
        kwargs["api_visibility"] = "private"
    return kwargs


def _accepted(cls: type) -> set[str] | None:
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None  # takes anything
    return {name for name in params if name != "self"}


def translate_init(cls_name: str, accepted: set[str] | None, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Gradio 3 constructor arguments (positional order, renamed and removed options) for Gradio 6."""
    kwargs = dict(kwargs)
    order = GRADIO3_POSITIONAL.get(cls_name, ("value",))
    for name, value in zip(order, args):
        kwargs.setdefault(name, value)
    if len(args) > len(order):
        log.debug("gr.%s: %d extra positional arguments dropped", cls_name, len(args) - len(order))
    if cls_name == "Image" and "source" in kwargs:
        source = kwargs.pop("source")
        kwargs.setdefault("sources", [source] if isinstance(source, str) else source)
    if cls_name == "Button" and kwargs.get("variant") not in (None, *BUTTON_VARIANTS):
        kwargs["variant"] = "secondary"  # Gradio 3's "tool" and friends
    if "scale" in kwargs and isinstance(kwargs["scale"], float):
        kwargs["scale"] = max(1, round(kwargs["scale"]))
    if kwargs.get("visible") is None and "visible" in kwargs:
        kwargs.pop("visible")
    if accepted is not None:
        dropped = [k for k in kwargs if k not in accepted]
        for key in dropped:
            kwargs.pop(key)
        if dropped:
            log.debug("gr.%s: Gradio 3 arguments dropped: %s", cls_name, ", ".join(dropped))
    return kwargs


def _update(cls, value: Any = None, **kwargs: Any):
    """Gradio 3's `Component.update(...)`: Gradio 6's gr.update(...)."""
    if value is not None:
        kwargs["value"] = value
    return gr.update(**kwargs)


def _style(self, *args: Any, **kwargs: Any):
    """Gradio 3's `.style(...)`: layout hints Gradio 6 takes elsewhere; kept chainable, ignored."""
    return self


def compat_class(cls: type) -> type:
    """A subclass of a gradio block class that accepts Gradio 3 calls."""
    accepted = _accepted(cls)
    name = cls.__name__

    def __init__(self, *args: Any, **kwargs: Any):
        cls.__init__(self, **translate_init(name, accepted, args, kwargs))

    # Gradio reads a block's props (page config, gr.update outputs) by the names in its __init__'s
    # signature: it must be the base's, or the page gets components without value, choices or visibility.
    __init__.__signature__ = inspect.signature(cls.__init__)

    # The front end picks a component by the class name (and class id): subclasses of these, such as
    # ui_components.FormRow, must still say "row".
    block_name = (cls.__base__.__name__ if hasattr(cls, "is_template") else cls.__name__).lower()
    class_id = cls.get_component_class_id() if hasattr(cls, "get_component_class_id") else None
    namespace: dict[str, Any] = {"__init__": __init__, "update": classmethod(_update), "style": _style,
                                 "__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                 "get_block_name": lambda self: block_name,
                                 "get_block_class": lambda self: block_name}
    if class_id is not None:
        namespace["get_component_class_id"] = classmethod(lambda klass: class_id)
    subclass = plain_subclass(cls, name, namespace)
    # Listeners are set after the class exists: gradio's metaclass installs its own on creation.
    for attr in dir(cls):
        original = getattr(cls, attr, None)
        if callable(original) and getattr(original, "__qualname__", "").endswith("event_trigger"):
            setattr(subclass, attr, _compat_listener(original))
    # Gradio looks components up by their class name for the front end: the same name keeps it working.
    return subclass


def plain_subclass(base: type, name: str, namespace: dict[str, Any]) -> type:
    """A subclass of a gradio block class made without its metaclass's class-creation step, which
    writes .pyi type stubs beside the source file (into site-packages, or into our tree) on every start.
    The listeners and the argument recording that step adds are inherited from `base` anyway."""
    meta = type(base)
    creator = meta.__mro__[1] if len(meta.__mro__) > 1 else type  # ABCMeta for components, type for Blocks
    return creator.__new__(meta, name, (base,), dict(namespace))


def _compat_listener(original):
    @functools.wraps(original)
    def listener(self, *args: Any, **kwargs: Any):
        return original(self, *args, **translate_event_kwargs(kwargs))
    return listener


def build_gradio3_module() -> types.ModuleType:
    """The `gradio` module extension code imports."""
    module = types.ModuleType("gradio", "Gradio 6 with Gradio 3.41 calls, for A1111 extensions")
    module.__path__ = list(getattr(gr, "__path__", []))
    module.__version__ = gr.__version__
    classes: dict[str, type] = {}
    for attr in dir(gr):
        value = getattr(gr, attr)
        if (isinstance(value, type) and issubclass(value, gr.blocks.Block) and value.__module__.startswith("gradio")
                and attr[0].isupper()):
            classes[attr] = compat_class(value)
    for attr, cls in classes.items():
        setattr(module, attr, cls)
    module.Box = classes["Group"]
    module.Panel = classes["Group"]
    module.update = gr.update
    module.skip = gr.skip

    def __getattr__(name: str):
        return getattr(gr, name)

    module.__getattr__ = __getattr__
    return module
