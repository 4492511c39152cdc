"""ASGI guards in front of the whole app (API and UI): the Host a request names (DNS rebinding), requests
from other sites' pages (cross-site request forgery), request body size.

Plain ASGI, not BaseHTTPMiddleware: the body limit must count a streamed body as it arrives, and nothing
here should buffer a response or hide a client's disconnect from the routes.
"""
from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

# Gradio checks uploads itself (mount_gradio_app's max_file_size); its limit, not ours, applies there.
UPLOAD_SUFFIX = "/gradio_api/upload"


async def send_error(send, status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> None:
    """An answer in the API's error shape {error, detail, body, errors}, straight from the ASGI layer."""
    body = json.dumps({"error": error, "detail": detail, "body": "", "errors": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


# Methods that change nothing (CORS preflights included): a page of another site may send them.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class HostGuard:
    """Without --listen, only requests that name this machine by a local name get through.

    A page on attacker.example can make its own name resolve to 127.0.0.1 (DNS rebinding) and then talk to
    a local server as if it were its own origin; the Host header still says attacker.example.
    """

    def __init__(self, app, enabled: bool = True):
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope, receive, send):
        if not self.enabled or scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        host = _header(scope, b"host")
        if host is None or is_local_host(host):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        await send_error(send, 403, "Forbidden", f"Host {host[:100]!r} is not this server: without --listen it "
                                                 "answers only to localhost and 127.0.0.1")


def is_local_host(host: str) -> bool:
    """True for localhost, *.localhost, loopback addresses and 0.0.0.0 (which reaches this machine), with or
    without a port: names no other site can own."""
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:7860
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


class CrossSiteGuard:
    """Refuse state-changing requests that a browser sent from another site's page.

    Browsers mark such requests with Origin (and Sec-Fetch-Site); curl, requests and the webuiapi client
    send neither, so they pass. A body-less POST such as /interrupt needs no CORS preflight, so without
    this any web page could send it. Origins in `allowed` (--cors-allow-origins) pass too.
    """

    def __init__(self, app, allowed: Iterable[str] = ()):
        self.app = app
        self.allowed = frozenset(o.lower() for o in allowed)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method", "GET") in SAFE_METHODS:
            return await self.app(scope, receive, send)
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        reason = self.refusal(scope)
        if reason is None:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        await send_error(send, 403, "Forbidden", f"cross-site request refused: {reason} (a page of another site "
                                                 "cannot use this server; see --cors-allow-origins)")

    def refusal(self, scope) -> str | None:
        origin = _header(scope, b"origin")
        if origin is not None:
            origin = origin.strip().lower().rstrip("/")
            if origin in self.allowed or _same_origin(origin, _header(scope, b"host")):
                return None
            return f"Origin {origin[:100]!r} is not this server"
        site = (_header(scope, b"sec-fetch-site") or "").strip().lower()
        if site in ("cross-site", "same-site"):
            return f"Sec-Fetch-Site is {site}"
        return None


def _same_origin(origin: str, host: str | None) -> bool:
    if origin == "null" or host is None:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    default = {"http": 80, "https": 443}[parts.scheme]
    return _netloc(parts.netloc, default) == _netloc(host.lower(), default)


def _netloc(netloc: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit("//" + netloc)
    try:
        port = parts.port or default_port
    except ValueError:
        port = -1
    return (parts.hostname or ""), port


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
        if too_large and not answered and not started:
            await send_error(send, 413, "PayloadTooLarge", detail)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None
