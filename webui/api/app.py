"""Install the A1111-compatible API on the FastAPI app: auth, error shape, routes, the API's own settings."""
from __future__ import annotations

import base64
import binascii
import logging
import secrets
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from modules.flags import resolve_credentials
from modules.types import UserInputError
from webui.api.errors import INTERNAL_ERROR, ApiError, error_response, internal_error_detail

log = logging.getLogger("webui.api")

API_PREFIX = "/sdapi/v1"
# Always behind --api-auth, whether or not a route is registered yet (extensions add theirs late).
PROTECTED_PREFIXES = ("/sdapi/", "/controlnet/", "/tagger/", "/jobs/")
API_TAG, JOBS_TAG = "A1111 API", "Jobs (beyond A1111)"
OPENAPI_TAGS = [
    {"name": API_TAG, "description": "AUTOMATIC1111's /sdapi/v1: same paths, field names, defaults and "
                                     "answers. Every generation waits in the job queue behind earlier ones."},
    {"name": JOBS_TAG, "description": "Asynchronous jobs: POST .../jobs/txt2img (or img2img, extra-single-image) "
                                      "answers 202 with a job id at once; poll GET .../jobs/{id} for state and "
                                      "progress, .../preview for the live preview, .../result for A1111's answer; "
                                      "DELETE .../jobs/{id} cancels that job only."},
]


def install_api(app: FastAPI, ctx) -> None:
    """Add auth middleware, error handlers, the API's settings and every API router to `app`."""
    from webui.api import (
        routes_extras,
        routes_generation,
        routes_info,
        routes_jobs,
        routes_models,
        routes_options,
        routes_progress,
    )
    from webui.api.calls import ApiCalls
    from webui.api.limits import register_settings

    register_settings(ctx.settings)
    app.state.api_calls = ApiCalls()
    app.openapi_tags = OPENAPI_TAGS

    credentials = list(resolve_credentials(ctx.flags).api)
    if credentials:
        app.add_middleware(BasicAuth, credentials=credentials, api_only=bool(ctx.flags.nowebui))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        response = error_response(exc.status, exc.error, exc.detail)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
        # Without the refused input: echoing a client's (maybe huge) value back helps nobody.
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in exc.errors()]
        return error_response(422, "ValidationError", fields, errors=str(errors))

    @app.exception_handler(UserInputError)
    async def user_error(request: Request, exc: UserInputError):
        return error_response(422, "UserInputError", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        response = error_response(exc.status_code, "HTTPException", str(exc.detail))
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception):
        # Clients get the shape they parse and an id; the exception's text (paths, internals) stays in the log.
        error_id = uuid.uuid4().hex[:12]
        log.error("API error %s on %s", error_id, request.url.path, exc_info=exc)
        return error_response(500, INTERNAL_ERROR, internal_error_detail(error_id))

    for module in (routes_models, routes_generation, routes_extras, routes_progress, routes_options,
                   routes_info):
        app.include_router(module.router, prefix=API_PREFIX, tags=[API_TAG])
    app.include_router(routes_jobs.router, prefix=API_PREFIX, tags=[JOBS_TAG])


class BasicAuth:
    """HTTP Basic auth on the API's paths (every path with --nowebui). Plain ASGI: BaseHTTPMiddleware
    would hide a client's disconnect from the routes, which cancel the job of a client that left."""

    def __init__(self, app, credentials: list[tuple[str, str]], api_only: bool):
        self.app = app
        self.credentials = credentials
        self.api_only = api_only

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        if (self.api_only or is_api_path(scope["app"], request)) and not _authorized(request, self.credentials):
            response = error_response(401, "Unauthorized", "Incorrect username or password")
            response.headers["WWW-Authenticate"] = "Basic"
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def is_api_path(app: FastAPI, request: Request) -> bool:
    """True for every route of the app itself (ours, /docs, extensions' routes) and the API prefixes;
    False for what the mounted Gradio UI serves (it has its own --gradio-auth)."""
    path = request.url.path
    if path.startswith(PROTECTED_PREFIXES) or path.rstrip("/") in {p.rstrip("/") for p in PROTECTED_PREFIXES}:
        return True
    for route in app.router.routes:
        if isinstance(route, Mount):
            continue
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            return True
    return False


def _authorized(request: Request, credentials: list[tuple[str, str]]) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    # compare_digest on both parts so timing does not reveal a valid user name
    return any(secrets.compare_digest(user.encode(), u.encode()) & secrets.compare_digest(password.encode(), p.encode())
               for u, p in credentials)
