"""A form packed into one JSON value (webui/ui/packed_inputs.py) reaches the handler as if every widget had
been an input: each value through its own widget's preprocess (dropdown checks, index types, number
precision), the session's copy of a widget where an update changed it, and a readable error, never a stack
trace, for a stale page or a wrong value. Also: the Generate events of the real page send few inputs."""
from __future__ import annotations

import json
import types
import urllib.request

import gradio as gr
import pytest
from gradio.state_holder import StateHolder

from tests.ui.conftest import on_the_shared_server
from webui.ui.packed_inputs import pack_inputs

data_dir, server = on_the_shared_server()

# Inputs of a Generate event after packing: the JSON holder plus the widgets that cannot travel as JSON
# (init images, masks, gr.State). Unpacked, txt2img's Generate had 104 inputs, each a loading status
# that the page re-applied on every later status message.
MAX_GENERATE_INPUTS = 12


@pytest.fixture
def form():
    with gr.Blocks() as blocks:
        widgets = {
            "prompt": gr.Textbox(label="Prompt"),
            "steps": gr.Number(label="Steps", precision=0),
            "cfg": gr.Slider(1, 30, label="CFG Scale"),
            "hires": gr.Checkbox(label="Hires. fix"),
            "sampler": gr.Dropdown(["Euler", "DDIM"], label="Sampler"),
            "mode": gr.Radio(["one", "two"], type="index", label="Mode"),
            "picture": gr.Image(type="pil"),
            "state": gr.State({}),
        }
        packed = pack_inputs(widgets, "form_holder")
    holder = StateHolder()
    holder.set_blocks(blocks)
    return widgets, packed, holder


def page_values(widgets: dict, **values) -> dict:
    """The holder's value as the page's packing step builds it: {component id: value}."""
    return {str(widgets[name]._id): value for name, value in values.items()}


FORM = {"prompt": "a red circle", "steps": 19.0, "cfg": 7.5, "hires": True, "sampler": "DDIM", "mode": "two"}


def test_plain_widgets_are_packed_and_the_rest_stay_inputs(form):
    widgets, packed, _ = form
    assert set(packed.packed) == set(FORM)
    assert list(packed.direct) == ["picture", "state"]
    assert packed.event_inputs == [packed.holder, widgets["picture"], widgets["state"]]


def test_values_come_back_in_form_order_through_each_widgets_preprocess(form):
    widgets, packed, _ = form
    values = packed.values((page_values(widgets, **FORM), None, {"kept": 1}), None)
    assert list(values) == list(widgets)
    assert values["steps"] == 19 and isinstance(values["steps"], int)  # Number(precision=0)
    assert values["mode"] == 1  # Radio(type="index")
    assert values["sampler"] == "DDIM" and values["hires"] is True and values["cfg"] == 7.5
    assert values["state"] == {"kept": 1} and values["picture"] is None


def test_a_stale_page_gets_a_message_not_a_stack_trace(form):
    widgets, packed, _ = form
    stale = page_values(widgets, **{k: v for k, v in FORM.items() if k != "cfg"})
    with pytest.raises(gr.Error, match="out of date.*'cfg'"):
        packed.values((stale, None, {}), None)
    with pytest.raises(gr.Error, match="out of date"):
        packed.values((None, None, {}), None)


def test_a_value_the_widget_refuses_is_named(form):
    widgets, packed, _ = form
    with pytest.raises(gr.Error, match="not in the list of choices"):
        packed.values((page_values(widgets, **{**FORM, "sampler": "Nope"}), None, {}), None)
    with pytest.raises(gr.Error, match="Steps"):
        packed.values((page_values(widgets, **{**FORM, "steps": "many"}), None, {}), None)


def test_the_sessions_copy_of_a_widget_decides(form):
    """An event that gave this session's sampler dropdown new choices: the new choice passes there only."""
    widgets, packed, holder = form
    packed.root = types.SimpleNamespace(state_holder=holder)
    holder["mine"][widgets["sampler"]._id] = gr.Dropdown(["Euler", "LCM"], label="Sampler")
    request = types.SimpleNamespace(session_hash="mine")
    assert packed.values((page_values(widgets, **{**FORM, "sampler": "LCM"}), None, {}), request)["sampler"] == "LCM"
    with pytest.raises(gr.Error, match="not in the list of choices"):
        other = types.SimpleNamespace(session_hash="other")
        holder["other"]  # a session that saw no update
        packed.values((page_values(widgets, **{**FORM, "sampler": "LCM"}), None, {}), other)


@pytest.mark.server
def test_the_generate_events_send_few_inputs(server):
    with urllib.request.urlopen(server.url + "/config", timeout=60) as resp:
        config = json.loads(resp.read())
    by_elem_id = {c.get("props", {}).get("elem_id"): c["id"] for c in config["components"]}
    for trigger in ("txt2img_generate", "img2img_generate", "extras_generate"):
        first = next(d for d in config["dependencies"] if [by_elem_id[trigger], "click"] in d["targets"])
        assert first["backend_fn"] is False, f"{trigger} sends its whole form to the server"
        server_step = next(d for d in config["dependencies"] if d.get("trigger_after") == first["id"])
        assert len(server_step["inputs"]) <= MAX_GENERATE_INPUTS, (trigger, len(server_step["inputs"]))
        assert len(first["inputs"]) > 20, trigger  # the form itself is all there, packed
