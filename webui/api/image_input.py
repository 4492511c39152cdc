"""Input images of API requests: raw base64, `data:` URIs, and http(s) URLs when the setting allows them.

URLs are off by default (setting `api_enable_requests`, which the UI's Settings tab or config.json change,
never POST /options) and, even when allowed, never reach local addresses (loopback, private, link-local,
site-local, and IPv6 forms that embed an IPv4 address: NAT64, 6to4, ::a.b.c.d): a client of the API must not
be able to make the server read its own network. A whole fetch has a deadline (FETCH_DEADLINE_S). The address is checked after DNS resolution and the connection goes to the checked address, so a
name that resolves differently a moment later (DNS rebinding) gains nothing; redirects are checked too.
"""
from __future__ import annotations

import base64
import binascii
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from urllib.parse import urljoin, urlsplit

from PIL import Image

from modules.images.checked import open_image_checked
from modules.types import UserInputError

URL_SETTING = "api_enable_requests"
PIXELS_SETTING = "api_max_image_pixels"
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
MAX_REDIRECTS = 3
TIMEOUT_S = 20  # per network operation
FETCH_DEADLINE_S = 30.0  # the whole fetch, redirects included: a server dripping bytes gains nothing
# IPv6 forms that lead to IPv4 or site networks although Python calls them global.
_REFUSED_NETWORKS = tuple(ipaddress.ip_network(net) for net in (
    "::/96",  # IPv4-compatible ::a.b.c.d (with :: and ::1)
    "64:ff9b::/96", "64:ff9b:1::/48",  # NAT64: a gateway turns these into the IPv4 address they embed
    "2002::/16",  # 6to4: embeds an IPv4 address
    "fec0::/10",  # site-local (deprecated, still routed on some networks)
))
USER_AGENT = "sd-webui-diffusers"


def decode_image(value: str, field: str, *, allow_urls: bool = False, max_pixels: int = 0) -> Image.Image:
    """A fully decoded PIL image from an API string; raises UserInputError naming `field` when it is bad.

    `max_pixels` (0 = no limit) is checked from the image header, before anything is decoded.
    """
    text = (value or "").strip()
    if not text:
        raise UserInputError("empty image data", field=field)
    if text.startswith(("http://", "https://")):
        if not allow_urls:
            raise UserInputError(f"image URLs are disabled; enable the {URL_SETTING!r} setting or send base64",
                                 field=field)
        data = fetch_url(text, field)
    else:
        data = decode_base64(text, field)
    return open_image_checked(data, max_pixels, field, setting=PIXELS_SETTING)


def decode_base64(text: str, field: str) -> bytes:
    """Bytes from raw base64 or a `data:[type];base64,` URI (whitespace and missing padding tolerated)."""
    if text.startswith("data:"):
        header, sep, text = text.partition(",")
        if not sep or ";base64" not in header:
            raise UserInputError("data: URI is not base64 (expected data:image/png;base64,...)", field=field)
    compact = "".join(text.split())
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        # URL-safe alphabet ('-', '_') is what some clients send
        try:
            return base64.b64decode(compact, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise UserInputError("invalid base64 image data", field=field) from None


# ---- URLs ----------


def public_address(host: str, port: int, field: str) -> str:
    """The first address `host` resolves to; raises when any of its addresses is not a public one."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UserInputError(f"cannot resolve {host!r} ({exc})", field=field) from None
    addresses = [info[4][0] for info in infos]
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        mapped = getattr(ip, "ipv4_mapped", None)
        if mapped is not None:
            ip = mapped
        if not ip.is_global or ip.is_multicast or any(ip in net for net in _REFUSED_NETWORKS if ip.version == 6):
            raise UserInputError(f"{host!r} is a local address ({ip}); the API does not fetch from those",
                                 field=field)
    if not addresses:
        raise UserInputError(f"cannot resolve {host!r}", field=field)
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to an address checked beforehand, whatever the host name resolves to now."""

    def __init__(self, host: str, port: int, address: str, **kwargs):
        super().__init__(host, port, **kwargs)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, **kwargs):
        super().__init__(host, port, context=ssl.create_default_context(), **kwargs)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the host name, as for any https request.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def fetch_url(url: str, field: str) -> bytes:
    """GET an http(s) URL on a public address (redirects re-checked), at most MAX_DOWNLOAD_BYTES, all of it
    within FETCH_DEADLINE_S seconds."""
    deadline_s = FETCH_DEADLINE_S
    deadline = time.monotonic() + deadline_s
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UserInputError(f"not an http(s) URL: {url[:100]!r}", field=field)
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        address = public_address(parts.hostname, port, field)
        cls = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
        conn = cls(parts.hostname, port, address, timeout=min(TIMEOUT_S, max(0.1, deadline - time.monotonic())))
        # Per-operation timeouts restart with every byte; this timer ends the whole exchange at the deadline.
        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _abort, args=(conn,))
        watchdog.daemon = True
        watchdog.start()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": "image/*"})
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                url = urljoin(url, response.getheader("Location"))
                continue
            if response.status != 200:
                raise UserInputError(f"{parts.hostname} answered HTTP {response.status}", field=field)
            data = response.read(MAX_DOWNLOAD_BYTES + 1)
            if time.monotonic() >= deadline:
                raise OSError("deadline")
        except (OSError, http.client.HTTPException) as exc:
            if time.monotonic() >= deadline:
                raise UserInputError(f"{parts.hostname} did not send the image within {deadline_s:g} seconds",
                                     field=field) from None
            raise UserInputError(f"could not fetch the image ({exc})", field=field) from None
        finally:
            watchdog.cancel()
            conn.close()
        if len(data) > MAX_DOWNLOAD_BYTES:
            raise UserInputError(f"image is larger than {MAX_DOWNLOAD_BYTES // 2**20} MB", field=field)
        return data
    raise UserInputError(f"more than {MAX_REDIRECTS} redirects", field=field)


def _abort(conn: http.client.HTTPConnection) -> None:
    """Shut the connection's socket from another thread: a blocked read returns at once."""
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
