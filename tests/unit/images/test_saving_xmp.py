"""Infotext kept only in XMP (exif:UserComment), as tools that rewrite metadata leave it: read from PNG
(iTXt XML:com.adobe.xmp), JPEG and WebP; EXIF UserComment and the parameters chunk still win when present."""
from __future__ import annotations

import io

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from modules.images.saving import read_image_info, xmp_user_comment

TEXT = 'a cat & "friends" <3\nSteps: 20, Sampler: Euler, Seed: 7, Size: 8x8'
ESCAPED = TEXT.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/">'
    f'<exif:UserComment><rdf:Alt><rdf:li xml:lang="x-default">{ESCAPED}</rdf:li></rdf:Alt></exif:UserComment>'
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
)


def reopen(fmt: str, **kwargs) -> Image.Image:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, fmt, **kwargs)
    return Image.open(io.BytesIO(buf.getvalue()))


def test_xmp_forms():
    assert xmp_user_comment(XMP) == TEXT
    assert xmp_user_comment(f'<rdf:Description exif:UserComment="{ESCAPED}"/>') == TEXT
    assert xmp_user_comment(f"<exif:UserComment>{ESCAPED}</exif:UserComment>".encode()) == TEXT
    assert xmp_user_comment("<x:xmpmeta/>") is None and xmp_user_comment(None) is None


def test_png_with_only_xmp():
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP)
    text, other = read_image_info(reopen("PNG", pnginfo=info))
    assert text == TEXT and "XML:com.adobe.xmp" not in other


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_jpeg_and_webp_with_only_xmp(fmt):
    image = reopen(fmt, xmp=XMP.encode())
    assert read_image_info(image)[0] == TEXT


def test_parameters_chunk_wins_over_xmp():
    info = PngInfo()
    info.add_text("parameters", "from the chunk")
    info.add_itxt("XML:com.adobe.xmp", XMP)
    assert read_image_info(reopen("PNG", pnginfo=info))[0] == "from the chunk"
