"""The gradio-side A1111 modules, handed to the adapter at start-up (modules/ cannot import gradio):
`gradio` itself with Gradio 3 calls, `modules.ui_components`, `modules.ui` and `modules.ui_common`."""
from __future__ import annotations

import types
from collections.abc import Callable


def a1111_ui_modules() -> dict[str, Callable[[object], types.ModuleType]]:
    """name -> factory(compat); one Gradio 3 module per app, shared by all of them."""
    def gradio3(compat):
        from webui.a1111.gradio3 import build_gradio3_module

        return build_gradio3_module()

    def ui_components(compat):
        from webui.a1111.ui_components import build_ui_components

        return build_ui_components(compat.imports.module("gradio"))

    def ui(name):
        def build(compat):
            from webui.a1111.ui_components import build_ui_module

            return build_ui_module(compat.imports.module("gradio"), compat.imports.module("modules.ui_components"),
                                   name)
        return build

    return {"gradio": gradio3, "modules.ui_components": ui_components, "modules.ui": ui("modules.ui"),
            "modules.ui_common": ui("modules.ui_common")}
