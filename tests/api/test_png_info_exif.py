"""PNG Info on JPEG and WebP: the infotext lives in EXIF UserComment ("UNICODE" prefix, UTF-16). Files saved by us
and files built as A1111 writes them (piexif's big-endian EXIF inserted into the JPEG/WebP; also a little-endian
variant other tools write) show their infotext in the PNG Info tab (here) and in POST /sdapi/v1/png-info
(test_png_info_defaults.py, which has the in-process server)."""
from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from modules.images.saving import SaveOptions, save_image

TEXT = ("a cat, café ☕ 猫\nNegative prompt: dog\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 8x8, Clip skip: 2")


def exif_user_comment(text: str, endian: str = ">") -> bytes:
    """An APP1 EXIF payload holding only UserComment = UNICODE + UTF-16 text (IFD0 -> Exif IFD -> 0x9286)."""
    body = b"UNICODE\x00" + text.encode("utf-16-be" if endian == ">" else "utf-16-le")
    exif_ifd = 8 + 2 + 12 + 4  # after the TIFF header and IFD0's one entry
    data = exif_ifd + 2 + 12 + 4
    ifd0 = struct.pack(endian + "H", 1) + struct.pack(endian + "HHII", 0x8769, 4, 1, exif_ifd) + b"\0" * 4
    ifd1 = struct.pack(endian + "H", 1) + struct.pack(endian + "HHII", 0x9286, 7, len(body), data) + b"\0" * 4
    header = (b"MM" if endian == ">" else b"II") + struct.pack(endian + "HI", 42, 8)
    return b"Exif\x00\x00" + header + ifd0 + ifd1 + body


def a1111_jpeg(text: str, endian: str = ">") -> bytes:
    """A JPEG saved without EXIF, then EXIF inserted as an APP1 segment after SOI (what piexif.insert does)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 90, 9)).save(buf, "JPEG", quality=80)
    plain, app1 = buf.getvalue(), exif_user_comment(text, endian)
    return plain[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + plain[2:]


def a1111_webp(text: str, endian: str = ">") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 90, 9)).save(buf, "WEBP", exif=exif_user_comment(text, endian))
    return buf.getvalue()


def ours(tmp_path, fmt: str) -> bytes:
    options = SaveOptions(format=fmt, directory_pattern="", export_for_4chan=False)
    return save_image(Image.new("RGB", (8, 8), (200, 10, 10)), tmp_path, options, infotext=TEXT).read_bytes()


FILES = {
    "our jpg": lambda tmp: ours(tmp, "jpg"),
    "our webp": lambda tmp: ours(tmp, "webp"),
    "a1111 jpg": lambda tmp: a1111_jpeg(TEXT),
    "a1111 webp": lambda tmp: a1111_webp(TEXT),
    "little-endian jpg": lambda tmp: a1111_jpeg(TEXT, "<"),
}


@pytest.mark.parametrize("kind", FILES)
def test_png_info_tab_shows_exif_infotext(tmp_path, kind):
    from webui.ui.tabs.png_info import info_html

    path = tmp_path / f"upload.{'webp' if 'webp' in kind else 'jpg'}"
    path.write_bytes(FILES[kind](tmp_path))
    shown, parameters = info_html(str(path))
    assert parameters == TEXT
    assert "<b>parameters</b>" in shown and "café ☕ 猫" in shown and "Seed: 42" in shown
