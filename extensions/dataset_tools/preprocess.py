"""Preprocess a folder of images for training: source folder in, destination folder of target-sized images out.

Behaviour follows A1111's old Train -> Preprocess tab: every image of the source folder (not its
sub-folders) is cropped or resized to the target size (preprocess_ops.py), optionally split into
overlapping tiles, mirrored, and captioned; outputs are PNGs named `<index>-<n>-<source name>.png`.
An image that cannot be read, a file that is no image and an image too small to train on are skipped
and listed in the report with the reason; the run goes on. The source folder is never written to.

`run_preprocess(options, progress)` is the one entry point (the UI, the API job and tests call it); it
reports progress per source file (set_total/step/textinfo, as a job context does) and stops between
files when `progress.interrupted` turns True, returning what it has done so far.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image, ImageOps, UnidentifiedImageError

from .focal import FocalWeights, debug_overlay
from .preprocess_ops import (
    CROP_MODES,
    RESIZE_MODES,
    AutoSizeOptions,
    SplitOptions,
    flipped_copies,
    process_image,
)
from .preprocess_paths import check_folders, kohya_folder

CAPTION_EXTENSIONS = (".txt", ".caption")
EXISTING_CAPTION_ACTIONS = ("ignore", "copy", "prepend", "append")
DEBUG_FOLDER = "focal_debug"  # beside the outputs, never among them: trainers would learn the overlay
MAX_SIDE = 8192  # target sizes beyond this are a typo, not a dataset

# An image turns into its caption text (a tagger); None when it has nothing to say.
Captioner = Callable[[Image.Image], "str | None"]


class Progress(Protocol):
    """What run_preprocess reports to: the job context of modules.jobs has exactly this."""

    textinfo: str

    def set_total(self, steps_total: int, images_total: int = 1) -> None: ...
    def step(self, step_index: int) -> None: ...

    @property
    def interrupted(self) -> bool: ...


class NoProgress:
    """Progress for direct calls (tests, scripts): records nothing, never interrupted."""

    textinfo = ""
    interrupted = False

    def set_total(self, steps_total: int, images_total: int = 1) -> None:
        pass

    def step(self, step_index: int) -> None:
        pass


@dataclass(frozen=True)
class PreprocessOptions:
    """One run. Sizes in pixels; `repeats` > 0 writes into `<destination>/<repeats>_<name>/` (kohya)."""

    source_dir: Path
    destination_dir: Path
    width: int = 512
    height: int = 512
    crop: str = "center"  # one of preprocess_ops.CROP_MODES
    resize_mode: str = "stretch"  # crop "none": stretch or fill
    flip: bool = False  # also write a mirrored copy of every output
    focal_weights: FocalWeights = FocalWeights()
    focal_debug: bool = False  # write the focal analysis drawn on the image into DEBUG_FOLDER
    split: SplitOptions = SplitOptions()
    autosize: AutoSizeOptions = AutoSizeOptions()
    repeats: int = 0
    name: str = ""
    caption_filename: bool = False  # the source file's name (cleaned) as caption
    existing_caption: str = "ignore"  # what to do with a `<source>.txt` beside the image
    caption_extension: str = ".txt"
    min_side: int = 32  # a source image whose short side is smaller is skipped as too small

    def validate(self) -> None:
        """Raise ValueError naming the first bad value."""
        for key in ("width", "height"):
            value = getattr(self, key)
            if not 8 <= value <= MAX_SIDE:
                raise ValueError(f"{key} {value}: give 8 to {MAX_SIDE} pixels")
        if self.crop not in CROP_MODES:
            raise ValueError(f"crop {self.crop!r}: one of {', '.join(CROP_MODES)}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode {self.resize_mode!r}: one of {', '.join(RESIZE_MODES)}")
        if self.existing_caption not in EXISTING_CAPTION_ACTIONS:
            raise ValueError(f"existing_caption {self.existing_caption!r}: one of "
                             f"{', '.join(EXISTING_CAPTION_ACTIONS)}")
        if self.caption_extension not in CAPTION_EXTENSIONS:
            raise ValueError(f"caption_extension {self.caption_extension!r}: one of {', '.join(CAPTION_EXTENSIONS)}")
        if self.repeats < 0:
            raise ValueError(f"repeats {self.repeats}: 0 (no kohya folder) or more")
        if min(self.focal_weights.face, self.focal_weights.entropy, self.focal_weights.edges) < 0:
            raise ValueError("focal weights must be 0 or more")

    @property
    def output_dir(self) -> Path:
        return kohya_folder(Path(self.destination_dir), self.repeats, self.name)


@dataclass
class Skipped:
    file: str
    reason: str


@dataclass
class PreprocessReport:
    """What a run did: files written (images, captions, debug overlays) and source files skipped, why."""

    source_dir: str
    output_dir: str
    written: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    debug: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    processed: int = 0  # source images that gave outputs
    total: int = 0  # source files looked at
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        text = (f"{self.processed} of {self.total} files processed, {len(self.written)} images written to "
                f"{self.output_dir}, {len(self.skipped)} skipped")
        return text + (" (interrupted)" if self.interrupted else "")


def run_preprocess(options: PreprocessOptions, progress: Progress | None = None,
                   captioner: Captioner | None = None) -> PreprocessReport:
    """Process every file of `options.source_dir` into `options.output_dir`; see the module docstring."""
    progress = progress or NoProgress()
    # 1. Check everything before the first write.
    options.validate()
    source = Path(options.source_dir).resolve()
    output = options.output_dir.resolve()
    debug_dir = Path(options.destination_dir).resolve() / DEBUG_FOLDER
    check_folders(source, output)
    if options.focal_debug and options.crop == "focal":
        check_folders(source, debug_dir)
    files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    image_stems = {p.stem for p in files if p.suffix.lower() not in CAPTION_EXTENSIONS}
    # A caption beside an image is input for that image, not a file to report.
    files = [p for p in files if not (p.suffix.lower() in CAPTION_EXTENSIONS and p.stem in image_stems)]
    report = PreprocessReport(str(source), str(output), total=len(files))
    output.mkdir(parents=True, exist_ok=True)
    progress.set_total(len(files), 1)
    target = (options.width, options.height)

    # 2. One source file at a time; a bad file is reported and the run goes on.
    for index, path in enumerate(files):
        if progress.interrupted:
            report.interrupted = True
            break
        progress.textinfo = f"Preprocess {index + 1}/{len(files)}: {path.name}"
        image, reason = read_image(path, options.min_side)
        if image is None:
            report.skipped.append(Skipped(str(path), reason))
        else:
            _process_one(options, index, path, image, target, output, debug_dir, captioner, report)
        progress.step(index)
    return report


def _process_one(options: PreprocessOptions, index: int, path: Path, image: Image.Image, target: tuple[int, int],
                 output: Path, debug_dir: Path, captioner: Captioner | None, report: PreprocessReport) -> None:
    try:
        produced = process_image(image, target, options.crop, resize_mode=options.resize_mode,
                                 weights=options.focal_weights, split=options.split, autosize=options.autosize)
    except Exception as exc:  # noqa: BLE001 - one odd image (a huge palette, a decoder bug) must not end the run
        report.skipped.append(Skipped(str(path), f"could not be processed: {type(exc).__name__}: {exc}"))
        return
    existing = read_existing_caption(path)
    sub = 0
    for item in produced:
        outputs = [item.image] + ([copy for _, copy in flipped_copies(item.image)] if options.flip else [])
        for out in outputs:
            name = f"{index:05d}-{sub}-{safe_stem(path.stem)}"
            target_path = output / f"{name}.png"
            out.save(target_path)
            report.written.append(str(target_path))
            caption = make_caption(options, path, out, existing, captioner, report)
            if caption:
                caption_path = output / f"{name}{options.caption_extension}"
                caption_path.write_text(caption, encoding="utf-8")
                report.captions.append(str(caption_path))
            sub += 1
        if options.focal_debug and item.analysis is not None and item.scaled is not None and item.box:
            debug_dir.mkdir(parents=True, exist_ok=True)
            debug_path = debug_dir / f"{index:05d}-{safe_stem(path.stem)}-focal.png"
            debug_overlay(item.scaled, item.analysis, item.box).save(debug_path)
            report.debug.append(str(debug_path))
    report.processed += 1


def read_image(path: Path, min_side: int) -> tuple[Image.Image | None, str]:
    """(the image, upright and RGB, "") or (None, why it is skipped)."""
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)  # phone photos are stored sideways with an EXIF flag
    except UnidentifiedImageError:
        return None, "not an image file"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # SyntaxError: broken PNG chunks
        return None, f"unreadable image: {exc}"
    if min(image.size) < min_side:
        return None, f"too small: {image.width}x{image.height} (at least {min_side} pixels a side)"
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white, not the black a plain convert gives.
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat, ""
    return image.convert("RGB"), ""


def read_existing_caption(path: Path) -> str:
    for ext in CAPTION_EXTENSIONS:
        candidate = path.with_suffix(ext)
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8", errors="replace").strip()
    return ""


def filename_caption(stem: str) -> str:
    """A caption from a file name: "00012-0-a_red car (2)" -> "a red car" (index prefixes, copy markers
    and underscores go)."""
    text = re.sub(r"^\d+(-\d+)*-", "", stem)
    text = re.sub(r"\s*\(\d+\)$", "", text)
    return re.sub(r"\s+", " ", text.replace("_", " ")).strip()


def make_caption(options: PreprocessOptions, path: Path, image: Image.Image, existing: str,
                 captioner: Captioner | None, report: PreprocessReport) -> str:
    """The caption text of one output: tagger or file name, combined with an existing caption as asked."""
    base = ""
    if captioner is not None:
        try:
            base = (captioner(image) or "").strip()
        except Exception as exc:  # noqa: BLE001 - a tagger failing on one image is a warning, not the run's end
            message = f"{path.name}: captioning failed: {type(exc).__name__}: {exc}"
            if message not in report.warnings:
                report.warnings.append(message)
    if not base and options.caption_filename:
        base = filename_caption(path.stem)
    action = options.existing_caption
    if not existing or action == "ignore":
        return base
    if action == "copy" or not base:
        return existing
    return f"{existing}, {base}" if action == "prepend" else f"{base}, {existing}"


def safe_stem(stem: str) -> str:
    """A file-name part without characters that break paths or shells on any system."""
    return re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", stem)[:120] or "image"
