"""Open untrusted image files with a pixel limit checked from the header, before any pixel is decoded.

A PNG of a few KB can declare 12000x12000 pixels and decode to hundreds of MB; PIL's own guard
(Image.MAX_IMAGE_PIXELS) is process-wide and only warns below twice its value. Here the limit is per call,
so the API, the UI and batch tools can each pass their own.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from modules.types import UserInputError


class ImageTooLarge(UserInputError):
    """An image whose header declares more pixels than allowed; nothing of it was decoded."""


def check_pixels(width: int, height: int, max_pixels: int, field: str | None = None, setting: str = "") -> None:
    """Raise ImageTooLarge when width x height (pixels) is over `max_pixels` (0 or less: no limit)."""
    if max_pixels > 0 and width * height > max_pixels:
        where = f" (setting {setting})" if setting else ""
        raise ImageTooLarge(f"image is {width}x{height} = {width * height / 1e6:.1f} megapixels; the limit is "
                            f"{max_pixels / 1e6:.1f} megapixels{where}", field=field)


def open_image_checked(source: bytes | BinaryIO | Path | str, max_pixels: int, field: str | None = None,
                       setting: str = "") -> Image.Image:
    """A fully decoded image, its size checked against `max_pixels` from the header first.

    Raises ImageTooLarge for too many pixels (a decompression bomb included) and UserInputError for data
    that is not a readable image; both name `field`.
    """
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with warnings.catch_warnings():
            # Our limit decides; PIL's process-wide warning would only repeat it in the log.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream)  # reads the header only
            check_pixels(image.width, image.height, max_pixels, field, setting)
            image.load()  # decode now: a truncated file fails here, not later on the worker
    except Image.DecompressionBombError:
        raise ImageTooLarge("image has more pixels than the image library allows (a decompression bomb)",
                            field=field) from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, UserInputError):
            raise
        # PIL's "cannot identify image file <_io.BytesIO object at 0x7f...>" tells a user nothing they can use
        reason = "no image format the image library knows" if isinstance(exc, Image.UnidentifiedImageError) \
            else str(exc)
        raise UserInputError(f"not a readable image ({reason})", field=field) from None
    return image
