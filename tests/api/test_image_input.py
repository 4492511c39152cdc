"""Input images: base64 and data: URIs decode; URLs only when enabled and never to local addresses
(redirects included). In-process; the one HTTP server here is local and reached through a pinned name."""
from __future__ import annotations

import base64
import http.server
import io
import threading

import pytest
from PIL import Image

from modules.types import UserInputError
from webui.api import image_input
from webui.api.image_input import decode_image


def png_bytes(size=(8, 6), color=(10, 200, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_raw_base64_and_data_uri_decode():
    raw = base64.b64encode(png_bytes()).decode()
    assert decode_image(raw, "f").size == (8, 6)
    assert decode_image("data:image/png;base64," + raw, "f").size == (8, 6)
    # Line breaks and dropped padding are common in hand-made requests.
    assert decode_image("\n".join(raw[i:i + 60] for i in range(0, len(raw), 60)).rstrip("="), "f").size == (8, 6)
    urlsafe = base64.urlsafe_b64encode(png_bytes(color=(250, 250, 250))).decode()
    assert decode_image(urlsafe, "f").size == (8, 6)


@pytest.mark.parametrize("value, words", [
    ("", "empty"),
    ("not base64 at all!", "invalid base64"),
    (base64.b64encode(b"plain text, not a picture").decode(), "not a readable image"),
    ("data:image/png,rawbytes", "not base64"),
    ("http://example.com/a.png", "URLs are disabled"),
])
def test_bad_values_name_the_field(value, words):
    with pytest.raises(UserInputError) as err:
        decode_image(value, "init_images[0]")
    assert str(err.value).startswith("init_images[0]: ") and words in str(err.value)
    assert "object at 0x" not in str(err.value)  # no Python object reprs in a user's message


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x.png", "http://localhost/x.png", "https://10.1.2.3/x.png",
                                 "http://169.254.169.254/latest/meta-data", "http://[::1]/x.png",
                                 "http://[::ffff:127.0.0.1]/x.png", "http://192.168.0.10/x.png"])
def test_local_addresses_are_refused_even_when_urls_are_enabled(url):
    with pytest.raises(UserInputError, match="local address"):
        decode_image(url, "image", allow_urls=True)


@pytest.fixture
def local_site(monkeypatch):
    """A local HTTP server that the check believes is `public.test` (resolved to 127.0.0.1 on purpose)."""
    data = png_bytes((12, 10))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/image.png":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                self.wfile.write(data)
            else:  # /redirect: to the same server under its real, local address
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/image.png")
                self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    real_check = image_input.public_address

    def pretend_public(host, port, field):
        return "127.0.0.1" if host == "public.test" else real_check(host, port, field)

    monkeypatch.setattr(image_input, "public_address", pretend_public)
    yield server.server_port
    server.shutdown()


def test_url_fetch_connects_to_the_checked_address(local_site):
    # `public.test` does not resolve anywhere: the request can only work through the pinned address.
    assert decode_image(f"http://public.test:{local_site}/image.png", "image", allow_urls=True).size == (12, 10)


def test_redirect_to_a_local_address_is_refused(local_site):
    with pytest.raises(UserInputError, match="local address"):
        decode_image(f"http://public.test:{local_site}/redirect", "image", allow_urls=True)


@pytest.mark.parametrize("url", ["http://[64:ff9b::7f00:1]/x.png",  # NAT64 of 127.0.0.1
                                 "http://[64:ff9b::a01:203]/x.png",  # NAT64 of 10.1.2.3
                                 "http://[2002:7f00:1::1]/x.png",  # 6to4 around 127.0.0.1
                                 "http://[fec0::1]/x.png",  # deprecated site-local
                                 "http://[::7f00:1]/x.png", "http://[::10.0.0.1]/x.png"])  # IPv4-compatible
def test_ipv6_forms_that_reach_ipv4_or_site_networks_are_refused(url, no_network):
    with pytest.raises(UserInputError, match="local address"):
        decode_image(url, "image", allow_urls=True)


@pytest.fixture(params=["headers", "body"])
def drip_site(request, monkeypatch):
    """A server that sends one byte every 0.2 s for 8 s, in its headers or in its body: a slow-loris that
    no per-read timeout catches."""
    import socket
    import time

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    if request.param == "headers":
        head = b"HTTP/1.1 200 OK\r\nX-Padding: "  # a header line that never ends
    else:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n"

    def serve():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(head)
            ends = time.monotonic() + 8
            while time.monotonic() < ends and not stop.is_set():
                try:
                    conn.sendall(b"x")
                except OSError:
                    break
                time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    real_check = image_input.public_address
    monkeypatch.setattr(image_input, "public_address",
                        lambda host, port, field: "127.0.0.1" if host == "slow.test" else real_check(host, port, field))
    monkeypatch.setattr(image_input, "FETCH_DEADLINE_S", 1.0, raising=False)
    yield listener.getsockname()[1]
    stop.set()
    listener.close()
    thread.join(10)


def test_a_slow_server_is_cut_off_at_the_overall_deadline(drip_site):
    import time

    started = time.monotonic()
    with pytest.raises(UserInputError, match="1 seconds"):
        decode_image(f"http://slow.test:{drip_site}/image.png", "image", allow_urls=True)
    assert time.monotonic() - started < 3
