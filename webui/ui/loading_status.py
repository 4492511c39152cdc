"""Keep Gradio's per-event loading statuses small: one progress target for events that show no progress.

Why: Gradio's page keeps a loading status for every component that any event has ever updated, and on
every status message of every later event (pending, queued, started, each streamed update, finished) it
re-applies all of them, looking each component up by walking the whole layout. The page-load event
alone fills 137 components (ui-config defaults), a send-to button over 100: measured on txt2img 64x64,
3 steps, a Generate click then spent seconds of browser time in that loop (about 14 s click to result
under load 12, 4 s with the load event's statuses gone). An event with show_progress="hidden" shows no
status anywhere, so pointing its status at one of its outputs changes nothing visible.
"""
from __future__ import annotations

import gradio as gr

# Events with this many outputs or fewer keep Gradio's default (a status per output): the cost is small.
MAX_HIDDEN_TARGETS = 4


def limit_hidden_progress_targets(blocks: gr.Blocks, limit: int = MAX_HIDDEN_TARGETS) -> int:
    """Give every hidden-progress event with more than `limit` outputs one progress target; returns how many
    events changed. Call once the page is built, before it is mounted (the config is read at mount)."""
    changed = 0
    for fn in blocks.fns.values():
        if fn.show_progress != "hidden" or fn.show_progress_on is not None or len(fn.outputs) <= limit:
            continue
        fn.show_progress_on = [fn.outputs[0]]
        changed += 1
    return changed
