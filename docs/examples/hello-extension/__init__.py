"""The example extension of docs/extensions.md. It uses nothing but the public extension API."""
from __future__ import annotations

from modules.extensions.api import ExtensionApi

NAME = "hello-extension"


def setup(api: ExtensionApi) -> None:
    api.add_setting("hello_greeting", "Hello", "Greeting the Hello extension writes into infotext")
    api.add_tab("Hello", build_tab, elem_id="hello")
    api.add_section("Hello", build_section)
    api.add_infotext_field("Hello", arg=1)  # pasting an infotext fills the greeting box
    api.on("before_generation", lambda request, info: remember_greeting(api, info))
    api.add_route("/hello/ping", lambda: {"greeting": api.setting("hello_greeting")})


def remember_greeting(api: ExtensionApi, info) -> None:
    """Writes `Hello: <greeting>` into every image's infotext; the section can change or turn it off."""
    args = info.args(NAME)  # [enabled, text] from the UI section or the API's alwayson_scripts
    enabled = bool(args[0]) if args else True
    text = str(args[1]) if len(args) > 1 and args[1] else api.setting("hello_greeting")
    if enabled:
        info.params["Hello"] = text


def build_tab() -> None:
    import gradio as gr

    gr.Markdown("Hello from an extension.", elem_id="hello_markdown")


def build_section(is_img2img: bool) -> list:
    import gradio as gr

    enabled = gr.Checkbox(True, label="Say hello", elem_id=f"hello_enabled_{'img2img' if is_img2img else 'txt2img'}")
    text = gr.Textbox("", label="Greeting (empty: the setting)")
    return [enabled, text]
