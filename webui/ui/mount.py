"""Mount the Gradio UI on the FastAPI app with the file checks a launched Gradio app has.

Gradio refuses an event whose file input names a path that was not uploaded only once `blocks.has_launched`
is true, which `Blocks.launch()` sets and `mount_gradio_app` does not (Gradio 6, processing_utils
`_check_allowed`). Without it, an event such as PNG Info's with `{"path": "/etc/passwd"}` had the file copied
into Gradio's cache, and `/gradio_api/file=<cache path>` served it to anyone who can reach the UI.
"""
from __future__ import annotations

import gradio as gr

from webui.gradio_builds import deferred_builds, finish_mount
from webui.ui.app import build_ui, extension_head, ui_css, ui_js
from webui.ui.components.extra_networks_route import install_preview_route
from webui.ui.frame_pacing import PageHeadScript, head_script_tag
from webui.ui.loading_status import limit_hidden_progress_targets
from webui.ui.queue_timing import calm_queue

# Largest file one upload may carry (Gradio answers 413 above it). Big enough for an 8K PNG for Extras.
MAX_UPLOAD_MB = 200
# Events Gradio's queue runs at once. Gradio ties it to its 40 threads, but a waiting Generate holds no
# thread (runner.py), so more pages can wait in our job queue, which shows each its place in line; the
# sync handlers among them still share the 40 threads.
EVENT_SLOTS = 256


def mount_ui(app, ctx, auth: list[tuple[str, str]] | None) -> gr.Blocks:
    """Build the page and mount it at / on `app`; `auth` is the UI's login (None = no login page)."""
    with deferred_builds("build"):  # Gradio's app and config are built once, below (gradio_builds.py)
        blocks = build_ui(ctx)
    limit_hidden_progress_targets(blocks)  # before mounting: the page reads the config then
    with deferred_builds("mount"):
        gr.mount_gradio_app(app, blocks, path="/", auth=auth, ssr_mode=False, css=ui_css(ctx),
                            js=ui_js(ctx, blocks), head=extension_head(ctx), theme=None,
                            footer_links=["api"] if ctx.flags.api_enabled else [],
                            server_name=ctx.flags.server_host, server_port=ctx.flags.server_port,
                            max_file_size=f"{MAX_UPLOAD_MB}mb",
                            # Nothing beyond Gradio's own cache is served: outputs reach the page as copies.
                            allowed_paths=[])
    finish_mount(blocks, app)
    install_preview_route(app, ctx)  # the extra-networks cards' previews, behind the UI's login
    app.add_middleware(PageHeadScript, script=head_script_tag())  # no 60-fps loops on an idle page
    blocks.has_launched = True  # see the module docstring: turns Gradio's upload-folder check on
    blocks._queue.max_thread_count = EVENT_SLOTS  # as launch(max_threads=) sets it, without a 256-thread pool
    calm_queue(blocks._queue)  # Gradio's queue loops woke the event loop ~1100 times a second (queue_timing.py)
    return blocks
