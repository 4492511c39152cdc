"""Caption a folder: for each image, ask a tagger (or take the file name) and write `<image>.txt`
(or `.caption`) beside it. Modes: overwrite, append (new tags after the existing ones, no duplicates),
skip (images that already have a caption keep it). Unreadable images are skipped and reported."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .caption_files import caption_extension, caption_path, list_images, read_caption, write_caption
from .taggers.options import TagOptions, dedupe, split_tags

MODES = ("overwrite", "append", "skip")
FILENAME = "filename"  # the pseudo-tagger: the caption is the image's file name
_NUMBERING = re.compile(r"^\d+[-_ ]+")  # "00012-" as our saved images start (A1111 numbering)


@dataclass(frozen=True)
class CaptionRequest:
    """What to caption and how; `tagger` is a model name (see Taggers.resolve) or 'filename'."""

    folder: Path
    tagger: str = FILENAME
    options: TagOptions = field(default_factory=TagOptions)
    mode: str = "overwrite"
    extension: str = ".txt"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        caption_extension(self.extension)


@dataclass
class CaptionReport:
    """Caption files written, and images left alone with the reason."""

    written: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{len(self.written)} caption(s) written"
        if self.skipped:
            text += f", {len(self.skipped)} image(s) skipped"
        return text


def filename_caption(image: Path, options: TagOptions | None = None) -> str:
    """'00012-red_dress, smile.png' -> 'red dress, smile' (numbering dropped, underscores as spaces)."""
    stem = _NUMBERING.sub("", Path(image).stem)
    tags = split_tags(stem.replace("_", " "))
    if options is not None:
        tags = dedupe([*options.additional, *tags])
    return ", ".join(tags)


def merge(existing: str, new: str) -> str:
    """Append mode: the existing tags, then the new ones not already there."""
    return ", ".join(dedupe(split_tags(existing) + split_tags(new)))


def caption_folder(request: CaptionRequest, caption: Callable[[Image.Image], str],
                   progress: Callable[[int, int], None] | None = None) -> CaptionReport:
    """Caption every image in the folder with `caption(image) -> text` (ignored for 'filename')."""
    report = CaptionReport()
    images = list_images(request.folder)
    for index, image_path in enumerate(images):
        if progress is not None:
            progress(index, len(images))
        target = caption_path(image_path, request.extension)
        existing = read_caption(target)
        if request.mode == "skip" and existing is not None:
            report.skipped.append((image_path.name, f"{target.name} exists"))
            continue
        if request.tagger == FILENAME:
            text = filename_caption(image_path, request.options)
        else:
            try:
                with Image.open(image_path) as opened:
                    opened.load()
                    text = caption(opened)
            except (UnidentifiedImageError, OSError, SyntaxError) as exc:
                report.skipped.append((image_path.name, f"not a readable image: {exc}"))
                continue
        if request.mode == "append" and existing:
            text = merge(existing, text)
        write_caption(target, text)
        report.written.append(target.name)
    if progress is not None:
        progress(len(images), len(images))
    return report
