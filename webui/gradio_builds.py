"""Build Gradio's app and page config once per start, not five times.

Gradio 6 builds a whole FastAPI app (~90 routes) in every `gr.Blocks()` (its `queue()`) and again when the
`with` block ends, and the page config (every component's props, ~1000 here) twice at that end and twice
more in `mount_gradio_app`; only the last config, built once CSS, JS and theme are set, is ever served, and
the app that events run on (`blocks.app`) is the one from the end of the `with` block, never the one served.
Measured at start-up: 3 apps and 5 configs, ~3 s of CPU on a loaded 2-core machine, for 1 of each.

`deferred_builds("build")` around building the page (and around Blocks that are never served, such as the
off-page one A1111 script defaults are collected in) skips the app and config builds; `"mount"` around
`mount_gradio_app` keeps its app but skips its configs; `finish_mount` then builds the config once and lets
events run on the app that serves the page, as `Blocks.launch()` does. The switch is a context variable:
other threads (a server answering requests, a test building its own page) keep Gradio's own behaviour.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from typing import Literal

Phase = Literal["build", "mount"]
_PHASE: contextvars.ContextVar[Phase | None] = contextvars.ContextVar("gradio_build_phase", default=None)


@functools.cache
def _install() -> None:
    """Wrap Blocks.get_config_file and App.create_app once per process; unchanged outside a phase."""
    from gradio.blocks import Blocks
    from gradio.routes import App

    own_config = Blocks.get_config_file
    own_create_app = App.create_app

    @functools.wraps(own_config)
    def get_config_file(self):
        if _PHASE.get() is not None:
            return {}  # a placeholder: finish_mount assigns the real config before anything serves it
        return own_config(self)

    @functools.wraps(own_create_app)
    def create_app(blocks, *args, **kwargs):
        if _PHASE.get() == "build":
            return None  # this Blocks' app is set by finish_mount (or, off-page, never used)
        return own_create_app(blocks, *args, **kwargs)

    Blocks.get_config_file = get_config_file
    App.create_app = staticmethod(create_app)


@contextlib.contextmanager
def deferred_builds(phase: Phase) -> Iterator[None]:
    """Inside: Gradio's intermediate builds are skipped in this thread (see the module docstring)."""
    _install()
    token = _PHASE.set(phase)
    try:
        yield
    finally:
        _PHASE.reset(token)


def finish_mount(blocks, app) -> None:
    """After `mount_gradio_app(app, blocks, ...)` in a "mount" phase: the one config build, and `blocks.app`
    set to the Gradio app that serves the page (the queue runs events on `blocks.app`)."""
    from gradio.routes import App
    from starlette.routing import Mount

    served = [r.app for r in app.router.routes
              if isinstance(r, Mount) and isinstance(r.app, App) and r.app.blocks is blocks]
    if not served:
        raise RuntimeError("the Gradio page is not mounted on this app")
    blocks.config = blocks.get_config_file()
    blocks.app = served[-1]
