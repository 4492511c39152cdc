"""Send a form's plain widgets to an event as one JSON value, so the page keeps one loading status for them.

Why: Gradio 6.31's page gives every input of an event a loading status once the event reports (its status
tracker resolves a message to the event's outputs *and* inputs) and never drops it; from then on every
status message of every event re-applies all of them, each with a walk of the whole component tree.
txt2img's Generate has over 100 inputs, so after one click each progress message of the next job cost the
page about a hundred tree walks (a third of Chromium's CPU over a 512x512 job on 2 cores, in
bench/page_profile.py's V8 profile).

How: the trigger first runs a front-end-only step (no request, no status) that copies the plain widgets'
values into one hidden JSON holder, then the real handler runs with the holder and the widgets that cannot
travel as JSON (images, files, state). On the server each packed value goes through its own widget's
`preprocess` (the session's copy of the widget, as Gradio itself does), so dropdown checks, number
precision and index types behave as if the widget were an input.
"""
from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.context import Context

# Widgets whose page value is plain JSON and whose preprocess needs no file handling.
PACKABLE = (gr.Textbox, gr.Number, gr.Slider, gr.Checkbox, gr.Dropdown, gr.Radio, gr.CheckboxGroup)


@dataclass
class PackedInputs:
    """One form split in two: `packed` widgets travel in `holder` as {component id: value} (ids, as Gradio's
    own requests name components); `direct` ones as ordinary inputs."""

    names: list[str]
    packed: dict[str, gr.components.Component]
    direct: dict[str, gr.components.Component]
    holder: gr.JSON
    root: gr.Blocks

    @property
    def event_inputs(self) -> list:
        return [self.holder, *self.direct.values()]

    @property
    def pack_js(self) -> str:
        """The front-end step: the packed widgets' values, in order, become one object keyed by component id."""
        ids = [str(widget._id) for widget in self.packed.values()]
        return f"(...values) => Object.fromEntries({json.dumps(ids)}.map((id, i) => [id, values[i]]))"

    def values(self, args: tuple, request: gr.Request | None) -> dict[str, Any]:
        """{name: value} in the form's order from the handler's arguments (holder first, then direct ones)."""
        holder, *direct = args
        if not isinstance(holder, dict):
            raise gr.Error("This page is out of date: reload it (its form did not reach the server).")
        session = self._session(request)
        unpacked = {}
        for name, widget in self.packed.items():
            key = str(widget._id)
            if key not in holder:
                raise gr.Error(f"This page is out of date: reload it (the form has no value for {name!r}).")
            unpacked[name] = _preprocess(session.get(widget._id, widget) if session else widget, holder[key])
        unpacked.update(zip(self.direct, direct))
        return {name: unpacked[name] for name in self.names}

    def _session(self, request: gr.Request | None):
        holder = getattr(self.root, "state_holder", None)
        session_hash = getattr(request, "session_hash", None)
        if holder is None or session_hash is None or session_hash not in holder:
            return None
        return holder[session_hash]


def _preprocess(widget, value):
    try:
        return widget.preprocess(value)
    except gr.Error:
        raise
    except Exception as err:  # a hand-made request with a wrong type: say which field, not a stack trace
        label = widget.label or widget.elem_id or type(widget).__name__
        raise gr.Error(f"{label}: {value!r} is not a valid value ({err}).") from err


def pack_inputs(inputs: dict[str, Any], elem_id: str) -> PackedInputs:
    """Split `inputs` ({name: widget}); creates the hidden holder (id `elem_id`) in the current layout."""
    packed = {n: w for n, w in inputs.items() if isinstance(w, PACKABLE) and not w.stateful}
    direct = {n: w for n, w in inputs.items() if n not in packed}
    holder = gr.JSON(value=None, visible=False, elem_id=elem_id)
    return PackedInputs(list(inputs), packed, direct, holder, Context.root_block)


def wire_packed(trigger: Callable, packed: PackedInputs, handler: Callable, outputs, **event_kwargs):
    """`trigger` (e.g. `button.click`) packs the form, then runs `handler(values, request)` with the
    {name: value} dict: an async generator streams its updates, any other function returns them.
    Returns the handler's event (for `.then`)."""
    pack = trigger(None, list(packed.packed.values()), packed.holder, js=packed.pack_js, queue=False,
                   show_progress="hidden")
    if inspect.isasyncgenfunction(handler):
        async def run(*args, request: gr.Request = None):
            async for update in handler(packed.values(args, request), request):
                yield update
    else:
        def run(*args, request: gr.Request = None):
            return handler(packed.values(args, request), request)

    run.__name__ = handler.__name__  # Gradio names the event's API endpoint after its function
    return pack.then(run, packed.event_inputs, outputs, **event_kwargs)
