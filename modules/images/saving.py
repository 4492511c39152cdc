"""Saving images as A1111 lays them out: `outputs/txt2img-images/YYYY-MM-DD/00012-1234.png`, infotext inside.

PNG keeps the infotext in a `parameters` text chunk; JPEG and WEBP in EXIF UserComment (UNICODE, UTF-16),
so A1111's PNG Info and ours read each other's files. Every file is written to a temporary name in the same
folder first, so a crash never leaves a half-written image under a real name.
"""
from __future__ import annotations

import html
import io
import math
import os
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from modules.images.filenames import (  # noqa: F401  (re-exported: callers import names from here)
    KNOWN_TOKENS,
    expand_directory,
    expand_pattern,
    name_tokens,
    next_number,
    sanitize_name,
)
from modules.images.outputs import OutputDirs
from modules.types import GenerationRequest, GenerationResult

# Output folder per kind of image, A1111's names.
OUTPUT_FOLDERS = {
    "txt2img": "txt2img-images",
    "img2img": "img2img-images",
    "extras": "extras-images",
    "txt2img-grids": "txt2img-grids",
    "img2img-grids": "img2img-grids",
}
# Setting value -> (PIL format, file extension).
FORMATS = {"png": ("PNG", ".png"), "jpg": ("JPEG", ".jpg"), "jpeg": ("JPEG", ".jpg"),
           "webp": ("WEBP", ".webp")}

_EXIF_IFD, _USER_COMMENT = 0x8769, 0x9286
_UNICODE, _ASCII = b"UNICODE\x00", b"ASCII\x00\x00\x00"
# A JPEG APP1 segment holds at most 65533 bytes of EXIF.
_JPEG_EXIF_MAX = 65533
# XMP: PNG keeps the packet in this iTXt key; PIL's JPEG/WebP readers put it in info["xmp"].
_XMP_PNG_KEY = "XML:com.adobe.xmp"
_XMP_ELEMENT = re.compile(r"<exif:UserComment\b[^>]*>(.*?)</exif:UserComment>", re.S)
_XMP_ATTRIBUTE = re.compile(r'exif:UserComment="([^"]*)"')
_XMP_LI = re.compile(r"<rdf:li\b[^>]*>(.*?)</rdf:li>", re.S)
# PIL's per-format keys that say nothing about how the image was made.
_IGNORED_INFO = frozenset({
    "jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "exif", "loop", "background", "timestamp",
    "duration", "progressive", "progression", "icc_profile", "chromaticity", "photoshop", "gamma", "srgb",
    "transparency", "aspect", "interlace", "xmp", "adobe", "adobe_transform",
})


@dataclass(frozen=True)
class SaveOptions:
    """How images are saved: format png/jpg/webp, name pattern, date folder, sidecar .txt, quality 1-100,
    and A1111's "save a copy of large images as JPG" (over `downscale_threshold_mb` MB or `target_side_length` px)."""

    format: str = "png"
    filename_pattern: str = "[seed]"
    directory_pattern: str = "[date]"
    add_number: bool = True
    save_txt: bool = False
    jpeg_quality: int = 80
    webp_lossless: bool = False
    prompt_words: int = 8
    max_name_bytes: int = 200
    export_for_4chan: bool = True
    downscale_threshold_mb: float = 4.0
    target_side_length: int = 4000
    grid_format: str = "png"
    grid_to_dirs: bool = True

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> SaveOptions:
        """From A1111 setting keys (samples_format, samples_filename_pattern, jpeg_quality, save_txt, ...)."""
        base = cls()
        use_dirs = bool(values.get("save_to_dirs", True))
        # A1111: an empty name pattern is the seed, or seed and prompt when there are no subfolders to say it.
        default_name = "[seed]" if use_dirs else "[seed]-[prompt_spaces]"
        # A1111: an empty directory pattern means [prompt_words]; the setting's own default is [date].
        directory = str(values.get("directories_filename_pattern", base.directory_pattern) or "[prompt_words]")
        return cls(
            format=str(values.get("samples_format") or base.format).lower(),
            filename_pattern=str(values.get("samples_filename_pattern") or default_name),
            directory_pattern=directory if use_dirs else "",
            add_number=bool(values.get("save_images_add_number", True)),
            save_txt=bool(values.get("save_txt", False)),
            jpeg_quality=int(values.get("jpeg_quality", base.jpeg_quality)),
            webp_lossless=bool(values.get("webp_lossless", False)),
            prompt_words=int(values.get("directories_max_prompt_words", base.prompt_words)),
            export_for_4chan=bool(values.get("export_for_4chan", base.export_for_4chan)),
            downscale_threshold_mb=float(values.get("img_downscale_threshold", base.downscale_threshold_mb)),
            target_side_length=int(values.get("target_side_length", base.target_side_length)),
            grid_format=str(values.get("grid_format") or base.grid_format).lower(),
            grid_to_dirs=bool(values.get("grid_save_to_dirs", True)),
        )

    @classmethod
    def for_save_button(cls, values: Mapping[str, Any]) -> SaveOptions:
        """The UI's Save button: like generated images, but subfolders only with use_save_to_dirs_for_ui."""
        options = cls.from_settings(values)
        # The name pattern still follows save_to_dirs (A1111 picks its default from that setting alone).
        return options if values.get("use_save_to_dirs_for_ui", False) else replace(options, directory_pattern="")


# ---- folders ----------


def output_folder(outputs_dir: Path | str | OutputDirs, kind: str) -> Path:
    """The folder for kind txt2img, img2img, extras, txt2img-grids or img2img-grids: from the settings'
    OutputDirs, or `<outputs_dir>/<A1111 folder>` given a plain folder."""
    if isinstance(outputs_dir, OutputDirs):
        return outputs_dir.folder(kind)
    if kind not in OUTPUT_FOLDERS:
        raise ValueError(f"unknown output kind {kind!r}; choose one of: {', '.join(OUTPUT_FOLDERS)}")
    return Path(outputs_dir) / OUTPUT_FOLDERS[kind]


# ---- writing ----------


def save_image(image: Image.Image, folder: Path | str, options: SaveOptions = SaveOptions(), *,
               infotext: str = "", tokens: Mapping[str, Any] | None = None, basename: str = "",
               extra_info: Mapping[str, str] | None = None, now: datetime | None = None) -> Path:
    """Save one image under `folder`/<directory pattern>/ with the next free number; returns its path."""
    if options.format.lower() not in FORMATS:
        raise ValueError(f"unknown image format {options.format!r}; choose one of: png, jpg, webp")
    pil_format, ext = FORMATS[options.format.lower()]
    now = now or datetime.now()
    tokens = dict(tokens or {})

    # [image_hash] hashes the pixels: only computed when a pattern asks for it.
    wants_hash = "image_hash" in f"{options.filename_pattern}{options.directory_pattern}".lower()
    pixels = image.tobytes() if wants_hash else None
    naming = {"now": now, "prompt_words": options.prompt_words, "max_bytes": options.max_name_bytes,
              "image_bytes": pixels}

    target = Path(folder)
    if options.directory_pattern and (sub := expand_directory(options.directory_pattern, tokens, **naming)):
        target = target / sub
    target.mkdir(parents=True, exist_ok=True)

    data, exif_fits = _encode(image, pil_format, options, infotext, extra_info or {})
    decoration = expand_pattern(options.filename_pattern, tokens, **naming) if options.filename_pattern else ""
    # A1111 numbers a file that would otherwise have no name at all, whatever save_images_add_number says.
    numbered = options.add_number or not (decoration or basename)

    tried = [-1]

    def name_for(attempt: int) -> str:
        if numbered:
            # Rescan on every try: another saver may have taken numbers meanwhile.
            number = max(next_number(target, basename), tried[0] + 1)
            tried[0] = number
            stem = f"{basename}-{number:04}" if basename else f"{number:05}"
            return "-".join(p for p in (stem, decoration) if p)
        stem = "-".join(p for p in (basename, decoration) if p)
        return stem if attempt == 0 else f"{stem}-{attempt}"

    path = _publish(target, data, ext, name_for)
    if options.export_for_4chan and pil_format != "JPEG":
        _export_large_copy(image, path, len(data), options, infotext)
    if infotext and (options.save_txt or not exif_fits):
        # The text has to live somewhere: beside the image when the format could not hold it.
        _publish(target, infotext.encode("utf-8"), ".txt", lambda _: path.stem, overwrite=True)
    return path


def large_copy_size(size: tuple[int, int], file_bytes: int, options: SaveOptions) -> tuple[int, int] | None:
    """The (width, height) of A1111's extra JPEG for a large image, or None when the image is not large:
    over `downscale_threshold_mb` MB on disk, or a side over `target_side_length` px (then fitted to it)."""
    width, height = size
    side = int(options.target_side_length)
    oversize = side > 0 and (width > side or height > side)
    if not oversize and file_bytes <= options.downscale_threshold_mb * 1024 * 1024:
        return None
    if not oversize:
        return width, height
    if width > height:
        return side, max(1, height * side // width)
    return max(1, width * side // height), side


def _export_large_copy(image: Image.Image, path: Path, file_bytes: int, options: SaveOptions,
                       infotext: str) -> Path | None:
    """Save `path` again as a JPEG beside it (same name, .jpg) when the image is large; returns that path."""
    size = large_copy_size(image.size, file_bytes, options)
    if size is None:
        return None
    copy = image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)
    data, _ = _encode(copy, "JPEG", options, infotext, {})
    return _publish(path.parent, data, ".jpg", lambda _: path.stem, overwrite=True)


def _encode(image: Image.Image, pil_format: str, options: SaveOptions, infotext: str,
            extra_info: Mapping[str, str]) -> tuple[bytes, bool]:
    """Encoded file bytes and whether the infotext fitted inside."""
    buf = io.BytesIO()
    if pil_format == "PNG":
        info = PngInfo()
        for key, value in {"parameters": infotext, **extra_info}.items():
            if not value:
                continue
            try:
                value.encode("latin-1")
                info.add_text(key, value)
            except UnicodeEncodeError:
                info.add_itxt(key, value)  # tEXt is latin-1 only; iTXt holds UTF-8
        image.save(buf, "PNG", pnginfo=info)
        return buf.getvalue(), True

    exif = _exif_with_comment(infotext) if infotext else None
    fits = exif is None or pil_format != "JPEG" or len(exif.tobytes()) <= _JPEG_EXIF_MAX
    kwargs: dict[str, Any] = {"exif": exif} if exif is not None and fits else {}
    if pil_format == "JPEG":
        image = image if image.mode in ("RGB", "L") else image.convert("RGB")
        image.save(buf, "JPEG", quality=options.jpeg_quality, **kwargs)
    else:
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.mode else "RGB")
        image.save(buf, "WEBP", quality=options.jpeg_quality, lossless=options.webp_lossless, **kwargs)
    return buf.getvalue(), fits


def _exif_with_comment(text: str) -> Image.Exif:
    """EXIF holding `text` as UserComment: UNICODE prefix, UTF-16 big-endian, big-endian EXIF (as A1111's)."""
    exif = Image.Exif()
    exif.endian = ">"
    exif[_EXIF_IFD] = {_USER_COMMENT: _UNICODE + text.encode("utf-16-be")}
    return exif


def _publish(folder: Path, data: bytes, ext: str, name_for: Callable[[int], str], *,
             overwrite: bool = False) -> Path:
    """Write `data` to a temp file in `folder`, then give it its final name without ever overwriting."""
    tmp = str(folder / f".tmp-{uuid.uuid4().hex}{ext}")
    # Not mkstemp: its 0600 mode would stick to the image; os.open with 0666 respects the user's umask.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        for attempt in range(1000):
            final = folder / (name_for(attempt) + ext)
            if overwrite:
                os.replace(tmp, final)
                return final
            try:
                # A hard link fails when the name is taken, so two savers never claim the same number.
                os.link(tmp, final)
                return final
            except FileExistsError:
                continue
            except OSError:
                # No hard links on this file system: check, then rename (a small race, no torn files).
                if not final.exists():
                    os.replace(tmp, final)
                    return final
        raise FileExistsError(f"no free file name in {folder} after 1000 tries")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


BeforeSave = Callable[[Image.Image, str], tuple[Image.Image, str]]


def save_generation(result: GenerationResult, request: GenerationRequest, outputs_dir: Path | str | OutputDirs,
                    options: SaveOptions = SaveOptions(), *, model_name: str = "", model_hash: str = "",
                    save_grid: bool = True, now: datetime | None = None, before_save: BeforeSave | None = None,
                    after_save: Callable[[Path], None] | None = None) -> list[Path]:
    """Save every image of a job (and its grid) in its folder (OutputDirs from the settings, or A1111's folders
    under a plain `outputs_dir`); returns the paths, grid last.
    `before_save(image, infotext)` may hand back another image/infotext; `after_save(path)` hears each file."""
    now = now or datetime.now()
    folder = output_folder(outputs_dir, request.mode)
    paths = []

    def save(image, target, opts, infotext, tokens, basename=""):
        if before_save is not None:
            image, infotext = before_save(image, infotext)
        path = save_image(image, target, opts, infotext=infotext, tokens=tokens, basename=basename, now=now)
        if after_save is not None:
            after_save(path)
        paths.append(path)

    for i, image in enumerate(result.images):
        seed = result.all_seeds[i] if i < len(result.all_seeds) else request.seed
        prompt = result.all_prompts[i] if i < len(result.all_prompts) else request.prompt
        negative = result.all_negative_prompts[i] if i < len(result.all_negative_prompts) else None
        infotext = result.infotexts[i] if i < len(result.infotexts) else ""
        tokens = name_tokens(request, seed=seed, prompt=prompt, negative_prompt=negative, model_name=model_name,
                             model_hash=model_hash, index=i, all_seeds=result.all_seeds,
                             job_timestamp=result.job_timestamp, width=image.width, height=image.height)
        save(image, folder, options, infotext, tokens)
    if save_grid and result.grid is not None and not request.do_not_save_grid:
        tokens = name_tokens(request, seed=result.seed, model_name=model_name, model_hash=model_hash,
                             all_seeds=result.all_seeds, job_timestamp=result.job_timestamp,
                             width=result.grid.width, height=result.grid.height)
        # A1111 names grids grid-NNNN, in grid_format, in a subfolder only with grid_save_to_dirs.
        grid_options = replace(options, filename_pattern="", format=options.grid_format,
                               directory_pattern=options.directory_pattern if options.grid_to_dirs else "")
        grids = output_folder(outputs_dir, f"{request.mode}-grids")
        # A script's grid (X/Y/Z plot) carries its own infotext; a plain grid the first image's.
        save(result.grid, grids, grid_options, result.grid_info, tokens, "grid")
    return paths


# ---- reading ----------


def read_image_info(image: Image.Image) -> tuple[str | None, dict[str, Any]]:
    """(infotext or None, other text items) from PNG chunks, EXIF UserComment or XMP exif:UserComment, as PNG
    Info shows them."""
    items = dict(image.info or {})
    text = items.pop("parameters", None)
    comment = _read_user_comment(image)
    if comment:
        text = comment
    elif text is None and isinstance(items.get("comment"), (bytes, str)):
        raw = items.pop("comment")
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    elif text is None and (xmp := xmp_user_comment(items.get("xmp") or items.get(_XMP_PNG_KEY))):
        # Tools that move metadata to XMP keep the infotext as exif:UserComment there.
        text = xmp
        items.pop(_XMP_PNG_KEY, None)
    other = {k: v for k, v in items.items() if k not in _IGNORED_INFO and isinstance(v, (str, int, float))}
    return (str(text) if text is not None else None), other


def xmp_user_comment(xmp: bytes | str | None) -> str | None:
    """The exif:UserComment of an XMP packet (element, rdf:Alt list or attribute form), or None."""
    if not xmp:
        return None
    packet = xmp.decode("utf-8", errors="replace") if isinstance(xmp, bytes) else str(xmp)
    match = _XMP_ELEMENT.search(packet) or _XMP_ATTRIBUTE.search(packet)
    if match is None:
        return None
    body = match.group(1)
    if (item := _XMP_LI.search(body)) is not None:
        body = item.group(1)
    text = html.unescape(body).strip()
    return text or None


def _read_user_comment(image: Image.Image) -> str | None:
    """The EXIF UserComment as text, or None when there is none or the EXIF is unreadable."""
    try:
        exif = image.getexif()
        raw = exif.get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    except Exception:  # noqa: BLE001 - broken EXIF from other tools must not stop PNG Info
        return None
    if raw is None:
        return None
    return decode_user_comment(raw) or None


def decode_user_comment(raw: bytes | str) -> str:
    """Decode an EXIF UserComment: 8-byte charset prefix (UNICODE, ASCII, JIS or none) then the text."""
    if isinstance(raw, str):
        return raw.rstrip("\x00")
    head, body = raw[:8], raw[8:]
    if head == _UNICODE:
        if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
            text = body.decode("utf-16", errors="replace")
        else:
            # The standard says "EXIF byte order", but writers disagree; for mostly-ASCII text the zero bytes
            # tell: even positions for big-endian (A1111's and ours), odd for little-endian.
            even, odd = body[0::2].count(0), body[1::2].count(0)
            text = body.decode("utf-16-le" if odd > even else "utf-16-be", errors="replace")
    elif head == _ASCII:
        text = body.decode("utf-8", errors="replace")
    elif head == b"JIS\x00\x00\x00\x00\x00":
        text = body.decode("shift_jis", errors="replace")
    elif head == b"\x00" * 8:
        text = body.decode("utf-8", errors="replace")
    else:
        text = raw.decode("utf-8", errors="replace")
    return text.rstrip("\x00")


# ---- grids ----------


def grid_rows(count: int, rows: int | None = None, *, batch_size: int | None = None,
              prevent_empty_spots: bool = False) -> int:
    """A1111's grid rows: `rows` if > 0, batch size if 0, else about sqrt(count) (a divisor if asked)."""
    if count <= 0:
        raise ValueError("a grid needs at least one image")
    if rows is not None and rows > 0:
        chosen = rows
    elif rows == 0 and batch_size:
        chosen = batch_size
    elif prevent_empty_spots:
        chosen = math.floor(math.sqrt(count))
        while count % chosen:
            chosen -= 1
    else:
        chosen = round(math.sqrt(count))
    return max(1, min(chosen, count))


def make_grid(images: Sequence[Image.Image], rows: int | None = None, *, batch_size: int | None = None,
              prevent_empty_spots: bool = False) -> Image.Image:
    """Images on a black RGB grid, row by row, each cell the size of the first image."""
    n_rows = grid_rows(len(images), rows, batch_size=batch_size, prevent_empty_spots=prevent_empty_spots)
    cols = math.ceil(len(images) / n_rows)
    w, h = images[0].size
    grid = Image.new("RGB", (cols * w, n_rows * h), "black")
    for i, img in enumerate(images):
        grid.paste(img, (i % cols * w, i // cols * h))
    return grid
