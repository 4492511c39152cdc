"""ASGI guards in front of the whole app (API and UI): request body size.

Plain ASGI, not BaseHTTPMiddleware: the body limit must count a streamed body as it arrives, and nothing
here should buffer a response or hide a client's disconnect from the routes.
"""
from __future__ import annotations

import json
from collections.abc import Callable

# Gradio checks uploads itself (mount_gradio_app's max_file_size); its limit, not ours, applies there.
UPLOAD_SUFFIX = "/gradio_api/upload"


async def send_error(send, status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> None:
    """An answer in the API's error shape {error, detail, body, errors}, straight from the ASGI layer."""
    body = json.dumps({"error": error, "detail": detail, "body": "", "errors": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for a request body over `limit_bytes()` bytes: from Content-Length at once, else while it streams."""

    def __init__(self, app, limit_bytes: Callable[[], int]):
        self.app = app
        self.limit_bytes = limit_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path", "").endswith(UPLOAD_SUFFIX):
            return await self.app(scope, receive, send)
        limit = self.limit_bytes()
        if limit <= 0:
            return await self.app(scope, receive, send)
        detail = f"request body is larger than {limit / 2**20:g} MB (setting api_max_body_mb)"
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await send_error(send, 413, "PayloadTooLarge", detail)

        # Past the limit the app is told the client went away (it stops reading), and whatever it answers
        # to that is replaced by the 413.
        received = 0
        too_large = answered = started = False

        async def counting_receive():
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal answered, started
            if not too_large or started:
                started = started or message["type"] == "http.response.start"
                return await send(message)
            if not answered:
                answered = True
                await send_error(send, 413, "PayloadTooLarge", detail)

        await self.app(scope, counting_receive, guarded_send)
        if too_large and not answered:
            await send_error(send, 413, "PayloadTooLarge", detail)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None
