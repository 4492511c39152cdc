"""One FastAPI app: the Gradio UI mounted at /, the A1111 API at /sdapi/v1, the AppContext on app.state."""
from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

from modules.context import AppContext, StartupError, build_context, load_initial_model
from modules.flags import Flags, parse_auth

log = logging.getLogger("webui")


def configure_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level, logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # Libraries are chatty at INFO; their warnings still show.
    for noisy in ("httpx", "urllib3", "gradio", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # diffusers/transformers warn about things users cannot act on (torchvision-less image processors,
    # dtype casts we do on purpose) and draw progress bars into the log: errors only.
    for var in ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):
        os.environ.setdefault(var, "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def create_app(ctx: AppContext):
    """Build the FastAPI app with the API (when enabled) and the UI (unless --nowebui)."""
    from fastapi import FastAPI

    app = FastAPI(title="Stable Diffusion web UI (diffusers)", docs_url="/docs", redoc_url=None)
    app.state.ctx = ctx
    if ctx.flags.api_enabled:
        from webui.api.app import install_api

        install_api(app, ctx)
    install_guards(app, ctx)
    if not ctx.flags.nowebui:
        import gradio as gr

        from webui.ui.app import build_ui, ui_css, ui_js

        blocks = build_ui(ctx)
        auth = parse_auth(ctx.flags.gradio_auth) or None
        gr.mount_gradio_app(app, blocks, path="/", auth=auth, ssr_mode=False, css=ui_css(ctx), js=ui_js(ctx),
                            theme=None, footer_links=["api"] if ctx.flags.api_enabled else [],
                            server_name=ctx.flags.server_host, server_port=ctx.flags.server_port)
    return app


def install_guards(app, ctx: AppContext) -> None:
    """Guards in front of everything the app serves (API and UI); the last one added runs first."""
    from webui.api.guards import BodyLimit
    from webui.api.limits import BODY_SETTING, SETTINGS

    default_mb = next(spec.default for spec in SETTINGS if spec.key == BODY_SETTING)

    def body_limit() -> int:
        try:
            return int(ctx.settings.get(BODY_SETTING)) * 2**20
        except ValueError:  # the API (which registers the setting) is off: its default still guards the UI
            return default_mb * 2**20

    app.add_middleware(BodyLimit, limit_bytes=body_limit)


def serve(flags: Flags, project_root: Path) -> int:
    """Start-up and serve until interrupted; returns the process exit code."""
    configure_logging(flags.log_level)
    # No telemetry or update checks: our machines (and many users') are offline.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        parse_auth(flags.gradio_auth)
        parse_auth(flags.api_auth)
        ctx = build_context(flags, project_root)
    except (StartupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for notice in ctx.notices:
        log.warning(notice)
    # The model loads in the job worker, so requests that arrive meanwhile queue behind it.
    ctx.jobs.submit("load-model", lambda job_ctx: load_initial_model(ctx), description="load checkpoint")
    app = create_app(ctx)

    import uvicorn

    url = f"http://{flags.server_host}:{flags.server_port}"
    log.info("Serving %s at %s%s", "the API" if flags.nowebui else "the UI", url,
             " (API at /sdapi/v1, docs at /docs)" if flags.api_enabled else "")
    if flags.autolaunch and not flags.nowebui:
        import webbrowser

        threading.Timer(2.0, webbrowser.open, args=(f"http://127.0.0.1:{flags.server_port}",)).start()
    try:
        # Open browser tabs keep event streams alive; without a limit Ctrl+C would wait for them forever.
        uvicorn.run(app, host=flags.server_host, port=flags.server_port, log_level="warning",
                    timeout_graceful_shutdown=3)
    finally:
        ctx.close()
    return 0
