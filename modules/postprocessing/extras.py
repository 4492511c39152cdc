"""Extras: upscale images (upscaler 1, optionally blended with upscaler 2), "scale by" a factor or "scale to"
a size, as A1111's Extras tab and /sdapi/v1/extra-* do. Runs on the job worker (`run_extras`), one image
after the other, saving to outputs/extras-images when asked.

A source image's own `parameters` text stays with the result; what Extras did is written next to it as
the `extras` text chunk (A1111's name), e.g. "Postprocess upscale by: 2, Postprocess upscaler: Lanczos".

The upscale is one of the job's ordered steps (steps.py); extensions add others (`api.add_extras_step`),
which may turn one image into several and attach a caption, saved as `<image>.txt` beside the image.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from modules.images.outputs import OutputDirs
from modules.images.saving import SaveOptions, read_image_info, save_image
from modules.jobs.progress import JobStopped
from modules.postprocessing.steps import (
    DISABLED_SETTING,
    ENABLE,
    ORDER_SETTING,
    UPSCALE,
    ExtrasStep,
    PostprocessedImage,
    info_text,
    order_steps,
    run_steps,
    step_args,
)
from modules.postprocessing.upscalers import NONE, UpscalerRegistry, registry_for
from modules.types import GenerationResult, UserInputError

log = logging.getLogger(__name__)

SCALE_BY, SCALE_TO = 0, 1
MAX_SIDE = 8192  # pixels: the UI's limit; also keeps one API call from asking for gigabytes
MAX_FACTOR = 8.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


@dataclass(frozen=True)
class ExtrasRequest:
    """One Extras job, A1111's field names. Sizes in pixels, factor in (0, 8], visibility in [0, 1]."""

    images: tuple[tuple[str, Image.Image], ...] = ()  # (name, image); name is used for batch file names
    input_dir: str = ""  # "Batch from directory": read every image here (instead of `images`)
    output_dir: str = ""  # save there instead of outputs/extras-images
    resize_mode: int = SCALE_BY  # 0 = scale by upscaling_resize, 1 = scale to upscaling_resize_w x _h
    upscaling_resize: float = 2.0
    upscaling_resize_w: int = 512
    upscaling_resize_h: int = 512
    upscaling_crop: bool = True  # scale to: cover the size and crop the overhang (else keep the cover size)
    upscaler_1: str = NONE
    upscaler_2: str = NONE
    extras_upscaler_2_visibility: float = 0.0
    upscale_first: bool = False
    gfpgan_visibility: float = 0.0
    codeformer_visibility: float = 0.0
    codeformer_weight: float = 0.0
    save: bool = False  # the API returns images without saving (A1111); the UI saves
    show_results: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    # Extension steps: {step name: {"enable": bool, arg: value, ...}}; a step not named here does not run.
    steps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def validate_extras(request: ExtrasRequest, registry: UpscalerRegistry) -> None:
    """Raise UserInputError naming the first bad field."""
    if request.resize_mode not in (SCALE_BY, SCALE_TO):
        raise UserInputError(f"{request.resize_mode} is not 0 (scale by) or 1 (scale to)", field="resize_mode")
    if request.resize_mode == SCALE_BY and not 0 < request.upscaling_resize <= MAX_FACTOR:
        raise UserInputError(f"{request.upscaling_resize} is outside 0..{MAX_FACTOR:g}", field="upscaling_resize")
    if request.resize_mode == SCALE_TO:
        for name in ("upscaling_resize_w", "upscaling_resize_h"):
            value = getattr(request, name)
            if not 1 <= value <= MAX_SIDE:
                raise UserInputError(f"{value} is outside 1..{MAX_SIDE} pixels", field=name)
    if not 0.0 <= request.extras_upscaler_2_visibility <= 1.0:
        raise UserInputError(f"{request.extras_upscaler_2_visibility} is outside 0..1",
                             field="extras_upscaler_2_visibility")
    registry.get(request.upscaler_1, "upscaler_1")
    registry.get(request.upscaler_2, "upscaler_2")


def validate_steps(request: ExtrasRequest, known: list[ExtrasStep]) -> None:
    """Raise UserInputError for a step name nobody registered or args that are not a mapping."""
    names = {s.name.lower() for s in known}
    for name, args in request.steps.items():
        if str(name).lower() not in names:
            listed = ", ".join(s.name for s in known) or "none are installed"
            raise UserInputError(f"unknown Extras step {name!r}; known: {listed}", field="steps")
        if not isinstance(args, Mapping):
            raise UserInputError(f"step {name!r}: args must be an object of name: value", field="steps")


def target_size(width: int, height: int, request: ExtrasRequest) -> tuple[tuple[int, int], tuple[int, int]]:
    """((upscaled w, h), (final w, h)): scale by a factor, or cover the wanted size and maybe crop to it."""
    if request.resize_mode == SCALE_BY:
        size = (max(1, round(width * request.upscaling_resize)), max(1, round(height * request.upscaling_resize)))
        final = size
    else:
        want = (request.upscaling_resize_w, request.upscaling_resize_h)
        cover = max(want[0] / width, want[1] / height)
        size = (max(want[0], round(width * cover)), max(want[1], round(height * cover)))
        final = want if request.upscaling_crop else size
    if max(size) > MAX_SIDE:
        raise UserInputError(f"the result would be {size[0]}x{size[1]} pixels, more than {MAX_SIDE} on a side",
                             field="upscaling_resize")
    return size, final


def postprocess_image(image: Image.Image, request: ExtrasRequest, registry: UpscalerRegistry
                      ) -> tuple[Image.Image, str]:
    """(the upscaled image, its Extras infotext) for one image; no saving, no progress."""
    out, info = _upscale(image, request, registry)
    return out, info_text(info)


def _upscale(image: Image.Image, request: ExtrasRequest, registry: UpscalerRegistry
             ) -> tuple[Image.Image, dict[str, Any]]:
    first = registry.get(request.upscaler_1, "upscaler_1")
    if first.run is None:
        # A1111: with upscaler 1 "None" Extras does no upscaling at all (upscaler 2 included).
        return image, {}
    if image.mode not in ("RGB", "RGBA", "L"):
        # Palette and 16-bit images do not resample well (or at all): work in RGB(A) like the models do.
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    size, final = target_size(image.width, image.height, request)
    out = registry.upscale(image, first, size)
    info: dict[str, Any] = {}
    if request.resize_mode == SCALE_BY:
        info["Postprocess upscale by"] = request.upscaling_resize
    else:
        info["Postprocess upscale to"] = f"{request.upscaling_resize_w}x{request.upscaling_resize_h}"
        info["Postprocess crop to fit"] = request.upscaling_crop
    info["Postprocess upscaler"] = first.name
    second = registry.get(request.upscaler_2, "upscaler_2")
    if second.run is not None and request.extras_upscaler_2_visibility > 0:
        other = registry.upscale(image, second, size)
        out = Image.blend(out.convert("RGB"), other.convert("RGB"), request.extras_upscaler_2_visibility)
        info["Postprocess upscaler 2"] = second.name
        info["Postprocess upscaler 2 visibility"] = round(request.extras_upscaler_2_visibility, 3)
    if final != size:
        out = ImageOps.fit(out, final, Image.Resampling.LANCZOS)  # centre crop (sizes already cover)
    return out, info


def upscale_step(request: ExtrasRequest, registry: UpscalerRegistry) -> ExtrasStep:
    """The core's upscale as a step (order 1000, as A1111's): the request's upscale fields are its args.
    Its errors are the user's (a size over the limit), so it is not contained like an extension's step."""
    def process(items: list[PostprocessedImage], args: dict[str, Any]) -> list[PostprocessedImage]:
        for item in items:
            item.image, info = _upscale(item.image, request, registry)
            item.info.update(info)
        return items

    return ExtrasStep(UPSCALE, process, order=1000)


def registered_steps(ctx) -> list[ExtrasStep]:
    """The steps extensions registered (api.add_extras_step), in run order, without those the settings
    disable in Extras; the core's upscale is not among them (its widgets are the tab's own)."""
    system = getattr(ctx, "extensions", None)
    found = [p.provider for p in system.registry.providers(STEP_KIND)] if system is not None else []
    return [s for s in _ordered(ctx, [s for s in found if isinstance(s, ExtrasStep)]) if s.name != UPSCALE]


STEP_KIND = "extras_step"  # the provider kind of modules.extensions.registry


def _ordered(ctx, steps: list[ExtrasStep]) -> list[ExtrasStep]:
    return order_steps(steps, _setting_list(ctx, ORDER_SETTING), _setting_list(ctx, DISABLED_SETTING))


def _setting_list(ctx, key: str) -> list[str]:
    try:
        value = ctx.settings.get(key)
    except Exception:  # noqa: BLE001 - a context without the setting (tests, scripts): the default order
        return []
    if isinstance(value, str):  # "Split oversized images, Caption" typed into a text field
        value = [v.strip() for v in value.split(",")]
    return [str(v) for v in value or () if str(v).strip()]


def run_extras(ctx, request: ExtrasRequest, job_ctx=None) -> GenerationResult:
    """The Extras job: each image through the enabled steps (upscale among them), every output saved when
    asked (with its caption file); result images carry their chunks.

    `ctx` is the AppContext, duck-typed (settings, paths, extensions). Interrupt stops after the current
    image; the finished ones are kept, as for generation.
    """
    registry = registry_for(ctx)
    # 1. Check everything before the first image is touched.
    validate_extras(request, registry)
    extension_steps = registered_steps(ctx)
    validate_steps(request, extension_steps)
    core = upscale_step(request, registry)
    plan = [(step, args) for step in _ordered(ctx, [core, *extension_steps])
            if (args := {ENABLE: True} if step is core else step_args(step, request.steps)) is not None]
    sources = list(request.images) or list(read_folder(request.input_dir))
    if not sources:
        raise UserInputError("no image to process", field="image")
    result = GenerationResult()
    if request.gfpgan_visibility > 0 or request.codeformer_visibility > 0:
        result.warnings.append("Face restoration (GFPGAN/CodeFormer) is not available in this build; skipped")
    if job_ctx is not None:
        job_ctx.set_total(0, len(sources))

    # 2. One image after the other; a source may give several outputs (split, flipped copies).
    options = SaveOptions.from_settings(ctx.settings.as_dict()) if request.save else None
    batch = bool(request.input_dir) or len(sources) > 1
    for index, (name, image) in enumerate(sources):
        if job_ctx is not None:
            try:
                job_ctx.check()  # between images: an image once started is finished
            except JobStopped:
                result.interrupted = True
                break
            job_ctx.begin_image(index)
            job_ctx.textinfo = f"Extras: image {index + 1} of {len(sources)}"
        parameters, _ = read_image_info(image)
        items = _run_plan(plan, core, PostprocessedImage(image, name), result.warnings)
        for item, item_name in zip(items, _unique_names(items)):
            info = info_text(item.info)
            out = item.image.copy() if item.image is image else item.image
            out.info = {k: v for k, v in {"parameters": parameters, "extras": info}.items() if v}
            result.images.append(out)
            result.infotexts.append(info or (parameters or ""))
            # 3. Save: batch results are named after their sources; a folder the user named gets no date
            # folders; a caption a step set goes beside the image as <image>.txt (what trainers read).
            if options is not None:
                path = _save(ctx, request, out, item_name, parameters, info, options, batch=batch)
                result.saved_paths.append(str(path))
                if item.caption is not None:
                    path.with_suffix(".txt").write_text(item.caption, encoding="utf-8")
    if not request.show_results and request.input_dir:
        result.images = []  # "Show result images" off: a folder run only writes files
    return result


def _run_plan(plan: list[tuple[ExtrasStep, dict[str, Any]]], core: ExtrasStep, item: PostprocessedImage,
              warnings: list[str]) -> list[PostprocessedImage]:
    """The steps in order; the core's upscale raises (a user error), the extensions' are contained."""
    items = [item]
    for step, args in plan:
        if step is core:
            items = step.process(items, args)
        else:
            items = run_steps(items, [(step, args)], warnings)
    return items


def _unique_names(items: list[PostprocessedImage]) -> list[str]:
    """Item names, with "-2", "-3" added to repeats so two outputs of one source never share a file."""
    seen: dict[str, int] = {}
    names = []
    for item in items:
        count = seen.get(item.name.lower(), 0) + 1
        seen[item.name.lower()] = count
        stem, dot, ext = item.name.rpartition(".")
        if count == 1:
            names.append(item.name)
        else:
            names.append(f"{stem}-{count}{dot}{ext}" if dot else f"{item.name}-{count}")
    return names


def _save(ctx, request: ExtrasRequest, image: Image.Image, name: str, parameters: str | None, info: str,
          options: SaveOptions, *, batch: bool) -> Path:
    if request.output_dir:
        folder = Path(request.output_dir).expanduser()
        options = replace(options, directory_pattern="")
    else:
        # outdir_samples, else outdir_extras_samples (A1111's rule)
        folder = OutputDirs.from_settings(ctx.settings.as_dict(), ctx.paths.data_dir).folder("extras")
    basename = ""
    if batch:
        basename = Path(name).stem
        options = replace(options, filename_pattern="", add_number=False)
    return save_image(image, folder, options, infotext=parameters or "",
                      extra_info={"extras": info} if info else None, basename=basename)


def read_folder(folder: str):
    """(name, image) for every image file directly in `folder`, sorted by name."""
    if not folder:
        return
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise UserInputError(f"{folder} is not a folder", field="input_dir")
    for file in sorted(path.iterdir()):
        if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file():
            try:
                with Image.open(file) as image:
                    image.load()
                    yield file.name, image.copy()
            except OSError as exc:
                log.warning("Extras: skipped %s (%s)", file, exc)


def request_from_values(values: Mapping[str, Any]) -> ExtrasRequest:
    """The request from the Extras tab's widget values (A1111's names plus mode/image/files/scale_to)."""
    mode = values.get("mode") or "single_image"
    images: list[tuple[str, Image.Image]] = []
    input_dir = ""
    if mode == "single_image":
        if not values.get("image"):
            raise UserInputError("upload an image first", field="image")
        images.append(_open(values["image"]))
    elif mode == "batch_process":
        images += [_open(f) for f in values.get("files") or []]
        if not images:
            raise UserInputError("upload images first", field="image")
    else:
        input_dir = str(values.get("input_dir") or "").strip()
        if not input_dir:
            raise UserInputError("enter an input directory", field="input_dir")
    return ExtrasRequest(
        images=tuple(images), input_dir=input_dir, output_dir=str(values.get("output_dir") or "").strip(),
        resize_mode=SCALE_TO if values.get("scale_to") else SCALE_BY,
        upscaling_resize=float(values.get("upscaling_resize", 2.0)),
        upscaling_resize_w=int(values.get("upscaling_resize_w", 512)),
        upscaling_resize_h=int(values.get("upscaling_resize_h", 512)),
        upscaling_crop=bool(values.get("upscaling_crop", True)),
        upscaler_1=str(values.get("upscaler_1") or NONE), upscaler_2=str(values.get("upscaler_2") or NONE),
        extras_upscaler_2_visibility=float(values.get("extras_upscaler_2_visibility") or 0.0),
        save=True, show_results=bool(values.get("show_results", True)),
        steps={str(k): dict(v) for k, v in (values.get("steps") or {}).items()},
    )


def _open(value) -> tuple[str, Image.Image]:
    """(file name, image) from a path, a gradio file object or a PIL image."""
    if isinstance(value, Image.Image):
        return "image.png", value
    path = Path(getattr(value, "name", None) or getattr(value, "path", None) or str(value))
    try:
        with Image.open(path) as image:
            image.load()
            return path.name, image.copy()
    except OSError as exc:
        raise UserInputError(f"could not read {path.name} ({exc})", field="image") from None


def upscaler_names(ctx) -> list[str]:
    """Names for the upscaler dropdowns, "None" first."""
    return registry_for(ctx).names()


def unavailable_upscalers(ctx) -> dict[str, str]:
    """Upscalers that could not load here, name -> why (what to install, why a model file is unusable)."""
    return dict(registry_for(ctx).unavailable)
