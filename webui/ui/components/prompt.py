"""The prompt row of txt2img and img2img: prompts with token counters, Generate/Interrupt/Skip, the tool
buttons (paste parameters, clear, apply/save style) and the styles dropdown. Element ids as in A1111."""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr

from modules.prompts.token_counter import count_tokens
from webui.ui import forms
from webui.ui.components.extension_sections import paste_labels
from webui.ui.components.styles import StylesAdapter


@dataclass
class PromptRow:
    prompt: gr.Textbox
    negative: gr.Textbox
    generate: gr.Button
    interrupt: gr.Button
    skip: gr.Button
    paste: gr.Button
    styles: gr.Dropdown
    adapter: StylesAdapter
    extra_networks: gr.Button | None = None  # 🎴 "Show/hide extra networks" (components/extra_networks.py)
    paste_filter: Any = None  # extensions' paste filters (registry.run_paste_filters), run on a pasted infotext


def counter_html(ctx, text: str, steps, is_positive: bool) -> str:
    """"used/limit" for the loaded model's tokenizer; "-/75" while no model is loaded."""
    model = ctx.pipelines.current if ctx.pipelines is not None else None
    tokenizer = getattr(getattr(model, "pipe", None), "tokenizer", None)
    if tokenizer is None:
        return "<span>-/75</span>"
    try:
        used, limit = count_tokens(text or "", tokenizer, int(steps or 20), is_positive=is_positive)
    except Exception:  # noqa: BLE001 - a counter must never get in the way of typing
        return "<span>?/75</span>"
    return f"<span>{used}/{limit}</span>"


def build(ctx, tab: str) -> PromptRow:
    adapter = StylesAdapter(ctx)
    with gr.Row(elem_id=f"{tab}_toprow", equal_height=False):
        with gr.Column(scale=6, elem_id=f"{tab}_prompt_container"):
            # The counters sit in the boxes' top-right corner (CSS), as in A1111.
            prompt = gr.Textbox(label="Prompt", show_label=False, lines=3, max_lines=12,
                                elem_id=f"{tab}_prompt", placeholder="Prompt (Ctrl+Enter to generate)")
            counter = gr.HTML("<span>0/75</span>", elem_id=f"{tab}_token_counter", elem_classes=["token-counter"],
                              padding=False)
            negative = gr.Textbox(label="Negative prompt", show_label=False, lines=2, max_lines=12,
                                  elem_id=f"{tab}_neg_prompt", placeholder="Negative prompt")
            neg_counter = gr.HTML("<span>0/75</span>", elem_id=f"{tab}_negative_token_counter",
                                  elem_classes=["token-counter"], padding=False)
        with gr.Column(scale=2, min_width=220, elem_id=f"{tab}_actions_column"):
            generate = gr.Button("Generate", variant="primary", elem_id=f"{tab}_generate", size="lg")
            with gr.Row(elem_id=f"{tab}_interrupt_row"):
                interrupt = gr.Button("Interrupt", elem_id=f"{tab}_interrupt", size="sm", min_width=60)
                skip = gr.Button("Skip", elem_id=f"{tab}_skip", size="sm", min_width=60)
            with gr.Row(elem_id=f"{tab}_tools"):
                paste = gr.Button("Paste", elem_id=f"{tab}_paste", size="sm", min_width=60, elem_classes=["tool"])
                clear = gr.Button("Clear", elem_id=f"{tab}_clear_prompt", size="sm", min_width=60,
                                  elem_classes=["tool"])
                # A text label like its neighbours: A1111's 🎴 shows as an empty box where no emoji font is installed.
                extra_networks = gr.Button("Networks", elem_id=f"{tab}_extra_networks", size="sm", min_width=60,
                                           elem_classes=["tool"])
            with gr.Row(elem_id=f"{tab}_style_tools"):
                apply_style = gr.Button("Apply style", elem_id=f"{tab}_style_apply", size="sm", min_width=60,
                                        elem_classes=["tool"])
                save_style = gr.Button("Save style", elem_id=f"{tab}_style_create", size="sm", min_width=60,
                                       elem_classes=["tool"])
            with gr.Row(elem_id=f"{tab}_styles_row"):
                styles = gr.Dropdown(adapter.names(), value=[], multiselect=True, label="Styles",
                                     elem_id=f"{tab}_styles", scale=4)
                refresh_styles = gr.Button("Refresh", elem_id=f"{tab}_styles_refresh", size="sm",
                                           scale=0, min_width=60)
            with gr.Row(visible=False, elem_id=f"{tab}_style_save_row") as save_row:
                style_name = gr.Textbox(label="New style name", elem_id=f"{tab}_style_name", scale=3)
                style_ok = gr.Button("Save", elem_id=f"{tab}_style_save", size="sm", scale=0, min_width=60)
            style_msg = gr.HTML(elem_id=f"{tab}_style_message")

    # Token counters: the last keystroke wins, earlier ones are dropped (no backlog while typing).
    prompt.change(lambda t: counter_html(ctx, t, 20, True), prompt, counter, queue=False,
                  show_progress="hidden", trigger_mode="always_last")
    negative.change(lambda t: counter_html(ctx, t, 20, False), negative, neg_counter, queue=False,
                    show_progress="hidden", trigger_mode="always_last")
    clear.click(lambda: ("", ""), None, [prompt, negative], queue=False, show_progress="hidden")

    def on_apply(p, n, chosen):
        # A1111 folds the chosen styles into the boxes and clears the choice, so they do not apply twice.
        p, n = adapter.apply(p or "", n or "", chosen)
        return p, n, []

    apply_style.click(on_apply, [prompt, negative, styles], [prompt, negative, styles], show_progress="hidden")
    refresh_styles.click(lambda: gr.update(choices=adapter.names()), None, styles, show_progress="hidden")
    save_style.click(lambda: gr.update(visible=True), None, save_row, queue=False, show_progress="hidden")

    def on_save(name, p, n):
        try:
            adapter.save(name, p or "", n or "")
        except (OSError, ValueError) as exc:
            return gr.skip(), gr.skip(), f"<span class='gen-error'>{html.escape(str(exc))}</span>"
        return gr.update(choices=adapter.names()), gr.update(visible=False), f"Saved style {html.escape(name)}"

    style_ok.click(on_save, [style_name, prompt, negative], [styles, save_row, style_msg], show_progress="hidden")
    return PromptRow(prompt, negative, generate, interrupt, skip, paste, styles, adapter, extra_networks,
                     forms.paste_filter_of(ctx))


def wire_paste(row: PromptRow, fields: dict, last_info: gr.State) -> None:
    """Paste: an infotext in the prompt box (or, with an empty box, the last generation's) fills the form."""
    names = list(fields)
    labels = paste_labels(fields)  # extensions' infotext fields (their section widgets)

    def on_paste(text, last):
        last_texts = (last or {}).get("infotexts") or [""]
        source = text if forms.has_parameters(text or "") else ("" if (text or "").strip() else last_texts[0])
        if not source:
            gr.Info("Nothing to paste: put generation parameters (PNG Info text) into the prompt box")
            return [gr.skip()] * len(names)
        return forms.updates_from_infotext(source, names, labels, row.paste_filter)

    row.paste.click(on_paste, [row.prompt, last_info], [fields[n] for n in names], show_progress="hidden")
