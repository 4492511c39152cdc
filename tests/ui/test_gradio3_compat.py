"""Gradio 3 calls that A1111 extensions make, on Gradio 6, through the module extension code imports
(webui/a1111/gradio3.py), and A1111's ui_components. No browser: the page config says what renders."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from webui.a1111.gradio3 import build_gradio3_module
from webui.a1111.ui_components import build_ui_components, build_ui_module


def test_gradio3_calls_work_and_build_real_components():
    g = build_gradio3_module()
    with g.Blocks() as demo:
        with g.Box():  # Gradio 3's Box is a Group
            text = g.Textbox("hi", 3, label="Words").style(container=False)
            slider = g.Slider(0, 10, 5, 1, label="Strength")
            image = g.Image(source="upload", tool="sketch", type="pil")
            button = g.Button("Go", variant="tool")
            button.click(fn=lambda v: v, inputs=[text], outputs=[text], _js="(x) => x", show_progress=False)
        demo.load(fn=None, _js="() => {}")
    assert isinstance(text, gr.Textbox) and text.lines == 3 and text.value == "hi"
    assert (slider.minimum, slider.maximum, slider.value, slider.step) == (0, 10, 5, 1)
    assert image.sources == ["upload"] and button.variant == "secondary"
    assert g.Textbox.update(value="z") == {"value": "z", "__type__": "update"}
    assert [fn.js for fn in demo.fns.values()] == ["(x) => x", "() => {}"]
    assert text.get_block_name() == "textbox" and g.Box.__mro__[1] is gr.Group


def test_ui_components_render_as_their_gradio_bases_and_write_no_stubs():
    g = build_gradio3_module()
    uic = build_ui_components(g)
    ui = build_ui_module(g, uic)
    with g.Blocks():
        with uic.FormRow() as row:
            with uic.InputAccordion(False, label="Enable", elem_id="ext_enable") as enabled:
                strength = g.Slider(0, 1, 0.5)
            tool = uic.ToolButton("R", elem_classes="mine")
            refresh = ui.create_refresh_button(strength, lambda: None, lambda: {"value": 0.2}, "ext_refresh")
    assert (row.get_block_name(), enabled.get_block_name(), tool.get_block_name()) == ("row", "checkbox", "button")
    assert row.elem_classes == ["form"] and tool.elem_classes == ["mine", "tool"]
    assert enabled.value is False and refresh.elem_id == "ext_refresh"
    assert not list((Path(__file__).resolve().parents[2] / "webui" / "a1111").glob("*.pyi"))
