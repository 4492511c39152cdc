"""One FastAPI app: the Gradio UI mounted at /, the A1111 API at /sdapi/v1, the AppContext on app.state."""
from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from webui.gradio_import import lighten_gradio_import

# Before anything imports gradio (launch.py imports this module first): ~4 CPU seconds of every start.
lighten_gradio_import()

from modules.context import AppContext, StartupError, build_context, load_initial_model  # noqa: E402
from modules.flags import Credentials, Flags, allowed_origins, resolve_credentials  # noqa: E402

log = logging.getLogger("webui")
RESTART_DELAY_S = 1.0  # between "Apply and restart UI" answering and the server stopping
SERVE_WAIT_S = 120.0  # the first model load waits at most this long for the server to listen


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
    install_extension_routes(app, ctx)
    install_model_ready_route(app, ctx)
    install_guards(app, ctx)
    blocks = None
    if not ctx.flags.nowebui:
        from webui.ui.mount import mount_ui

        blocks = mount_ui(app, ctx, auth=list(resolve_credentials(ctx.flags).ui) or None)
    announce_app_started(ctx, blocks, app)
    return app


def install_extension_routes(app, ctx: AppContext) -> None:
    """Routes native extensions registered (behind --api-auth like every app route)."""
    system = getattr(ctx, "extensions", None)
    if system is None:
        return
    for route in system.registry.routes():
        try:
            app.add_api_route(route.path, route.endpoint, methods=list(route.methods))
        except Exception as exc:  # a bad endpoint signature is the extension's problem, not start-up's
            system.errors.add(route.extension, f"route {route.path}: {exc}")
            log.error("Extension %s: route %s not added: %s", route.extension, route.path, exc)


def install_model_ready_route(app, ctx: AppContext) -> None:
    """GET /internal/model-ready: whether the first model load has ended (the page answers before it does);
    scripts and tests that must not queue behind the load wait for `ready`. GET /internal/ping: {}."""

    def model_ready() -> dict:
        job = getattr(app.state, "model_load", None)
        ready = job.finished if job is not None else ctx.pipelines.current is not None
        return {"ready": ready, "model_error": ctx.model_error if ready else None}

    app.add_api_route("/internal/model-ready", model_ready, methods=["GET"], include_in_schema=False)
    # A1111's health check, {} while the server answers; clients ping it before they send work.
    app.add_api_route("/internal/ping", lambda: {}, methods=["GET"], include_in_schema=False)


def announce_app_started(ctx: AppContext, blocks, app) -> None:
    """A1111's on_app_started(demo, app) callbacks (extension API routes are added there), and every
    A1111 script's ui() built once so API calls that leave args out get the defaults."""
    compat = getattr(getattr(ctx, "extensions", None), "compat", None)
    if compat is None:
        return
    from webui.a1111.script_ui import collect_defaults
    from webui.gradio_builds import deferred_builds

    with deferred_builds("build"):  # an off-page Blocks: Gradio's app and config for it are never served
        collect_defaults(compat)
    compat.callbacks.call("app_started", blocks, app)
    keep_ui_mount_last(app)


def keep_ui_mount_last(app) -> None:
    """The UI is mounted at / and answers every path, so routes added after it (A1111 extensions add API
    routes in on_app_started, once the UI exists) would never be reached: move the mount behind them."""
    from starlette.routing import Mount

    routes = app.router.routes
    mounts = [r for r in routes if isinstance(r, Mount) and r.path == ""]
    routes[:] = [r for r in routes if r not in mounts] + mounts


def install_guards(app, ctx: AppContext) -> None:
    """Guards in front of everything the app serves (API and UI); the last one added runs first:
    Host, then cross-site origin (and CORS for --cors-allow-origins), then the body size."""
    from starlette.middleware.cors import CORSMiddleware

    from webui.api.guards import BodyLimit, CrossSiteGuard, HostGuard
    from webui.api.limits import BODY_SETTING, SETTINGS

    default_mb = next(spec.default for spec in SETTINGS if spec.key == BODY_SETTING)

    def body_limit() -> int:
        try:
            return int(ctx.settings.get(BODY_SETTING)) * 2**20
        except ValueError:  # the API (which registers the setting) is off: its default still guards the UI
            return default_mb * 2**20

    app.add_middleware(BodyLimit, limit_bytes=body_limit)
    origins = allowed_origins(ctx.flags)
    app.add_middleware(CrossSiteGuard, allowed=origins)
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(origins), allow_methods=["*"], allow_headers=["*"],
                           allow_credentials=True, expose_headers=["X-Job-Id", "Location", "Retry-After"])
    app.add_middleware(HostGuard, enabled=not ctx.flags.listen)


def security_warnings(flags: Flags, credentials: Credentials) -> list[str]:
    """What the start-up log should say about who can reach an unprotected UI or API."""
    ui = not flags.nowebui
    api = flags.api_enabled
    open_ui = ui and not credentials.ui
    open_api = api and not credentials.api
    if not flags.listen:
        return []
    if (not ui or open_ui) and (not api or open_api):
        return ["--listen without a password: anyone who can reach this machine can generate, change settings "
                "and switch models; set --auth USER:PASS (see SECURITY.md)"]
    if open_ui:
        return ["--api-auth protects the API only: the UI is open to the network; use --auth to protect both"]
    if open_api:
        return ["--gradio-auth protects the UI only: the API (/sdapi/v1) is open to the network; "
                "use --auth to protect both"]
    return []


def serve(flags: Flags, project_root: Path) -> int:
    """Start-up and serve until interrupted; returns the process exit code."""
    configure_logging(flags.log_level)
    # No telemetry or update checks: our machines (and many users') are offline.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        credentials = resolve_credentials(flags)
        from webui.a1111.modules import a1111_ui_modules

        ctx = build_context(flags, project_root, a1111_modules=a1111_ui_modules())
    except (StartupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for notice in [*ctx.notices, *security_warnings(flags, credentials)]:
        log.warning(notice)
    # The model loads in the job worker once the server answers, so requests that arrive meanwhile queue
    # behind it (and wait, never fail).
    serving = threading.Event()
    load = start_model_load(ctx, serving)
    # Before the UI is built: the Extensions tab wires "Apply and restart UI" to reload the page only when
    # the app can restart itself.
    restart = InPlaceRestart()
    ctx.restart_handler = restart
    app = create_app(ctx)
    app.state.model_load = load

    import uvicorn

    url = f"http://{flags.server_host}:{flags.server_port}"
    log.info("Serving %s at %s%s", "the API" if flags.nowebui else "the UI", url,
             " (API at /sdapi/v1, docs at /docs)" if flags.api_enabled else "")
    if flags.autolaunch and not flags.nowebui:
        import webbrowser

        threading.Timer(2.0, webbrowser.open, args=(f"http://127.0.0.1:{flags.server_port}",)).start()
    # Open browser tabs keep event streams alive; without a limit Ctrl+C would wait for them forever.
    server = notifying_server(uvicorn.Config(app, host=flags.server_host, port=flags.server_port,
                                             log_level="warning", timeout_graceful_shutdown=3), serving.set)
    restart.server = server
    try:
        server.run()
    finally:
        ctx.close()
    if restart.requested.is_set():
        restart_process()
    return 0


def start_model_load(ctx: AppContext, serving: threading.Event | None = None) -> Any:
    """Queue the first model load as the worker's first job; returns the Job.

    With `serving`, the load waits until that is set (the server listens): importing diffusers and
    transformers (10+ s on a small CPU) would otherwise compete with start-up for the interpreter, and the
    page would answer that much later. Jobs submitted meanwhile queue behind it, so a generation sent at
    once waits for the model; the running job says "Loading model..." in the progress text.
    """

    def load(job_ctx) -> None:
        job_ctx.textinfo = "Loading model..."
        if serving is not None and not serving.wait(SERVE_WAIT_S):
            log.warning("The server did not start within %.0f s; loading the model anyway", SERVE_WAIT_S)
        load_initial_model(ctx)

    return ctx.jobs.submit("load-model", load, description="load checkpoint")


def notifying_server(config, on_started):
    """A uvicorn server that calls `on_started()` once it listens (start-up done, sockets bound)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:  # a port in use ends start-up with should_exit set
                on_started()

    return Server(config)


class InPlaceRestart:
    """ctx.restart_handler: stop serving a moment later, then `serve` re-executes the process."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.server = None  # the uvicorn server, once it exists

    def __call__(self) -> None:
        self.requested.set()
        # A moment later: the event that asked for it must still send its answer, or the page never
        # learns that it should wait for the restarted server and reload.
        threading.Timer(RESTART_DELAY_S, self._stop).start()

    def _stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True


def restart_process() -> None:
    """Start this app again in the same process (same pid and log): extensions load anew."""
    log.info("Restarting to apply extension changes")
    logging.shutdown()
    argv = list(getattr(sys, "orig_argv", [])[1:]) or list(sys.argv)
    os.execv(sys.executable, [sys.executable, *argv])
