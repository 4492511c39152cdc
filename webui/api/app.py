"""Install the A1111-compatible API on the FastAPI app: auth, error shape, routes."""
from __future__ import annotations

import base64
import binascii
import logging
import secrets

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from modules.flags import parse_auth
from modules.types import UserInputError

log = logging.getLogger("webui.api")

API_PREFIX = "/sdapi/v1"
# Every route under these prefixes requires --api-auth when it is set (extensions' routes included).
PROTECTED_PREFIXES = ("/sdapi/", "/controlnet/", "/tagger/", "/jobs/")


def error_response(status: int, error: str, detail: str = "", body: str = "", errors: str = "") -> JSONResponse:
    """A1111's error shape: {error, detail, body, errors}."""
    return JSONResponse(status_code=status, content={"error": error, "detail": detail, "body": body, "errors": errors})


def install_api(app: FastAPI, ctx) -> None:
    """Add auth middleware, error handlers and every API router to `app`."""
    from webui.api import routes_generation, routes_models

    credentials = parse_auth(ctx.flags.api_auth)
    if credentials:
        @app.middleware("http")
        async def basic_auth(request: Request, call_next):
            if request.url.path.startswith(PROTECTED_PREFIXES) and not _authorized(request, credentials):
                response = error_response(401, "Unauthorized", "Incorrect username or password")
                response.headers["WWW-Authenticate"] = "Basic"
                return response
            return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
        return error_response(422, "ValidationError", fields, errors=str(exc.errors()))

    @app.exception_handler(UserInputError)
    async def user_error(request: Request, exc: UserInputError):
        return error_response(422, "UserInputError", str(exc))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception):
        # Never a bare "Internal Server Error": clients get the shape they parse, the log gets the trace.
        log.exception("API error on %s", request.url.path)
        return error_response(500, type(exc).__name__, str(exc))

    app.include_router(routes_models.router, prefix=API_PREFIX)
    app.include_router(routes_generation.router, prefix=API_PREFIX)


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
    return any(secrets.compare_digest(user, u) & secrets.compare_digest(password, p) for u, p in credentials)
