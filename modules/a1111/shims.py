"""Builders of A1111's smaller modules (shared, paths, devices, sd_models, sd_samplers, images, launch,
errors, call_queue, infotext_utils) over one app's parts. Each returns a fresh module object; nothing
here is process-wide.
"""
from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path
from typing import Any

log = logging.getLogger("webui.a1111")


def _module(name: str, doc: str = "") -> types.ModuleType:
    return types.ModuleType(name, doc or f"A1111's {name}, as an adapter")


# -- modules.paths ---------------------------------------------------------------------------------
def build_paths(compat) -> types.ModuleType:
    mod = _module("modules.paths")
    paths = compat.ctx.paths
    mod.script_path = str(paths.builtin_extensions_dir.parent)
    mod.data_path = str(paths.data_dir)
    mod.models_path = str(paths.models_dir)
    mod.extensions_dir = str(paths.extensions_dir)
    mod.extensions_builtin_dir = str(paths.builtin_extensions_dir)
    mod.config_states_dir = str(Path(paths.data_dir) / "config_states")
    mod.default_output_dir = str(paths.outputs_dir)
    mod.sd_path = mod.script_path
    mod.paths = {}
    return mod


# -- modules.devices -------------------------------------------------------------------------------
def build_devices(compat) -> types.ModuleType:
    import torch

    from modules.pipelines.manager import free_memory

    mod = _module("modules.devices")
    device = torch.device(compat.ctx.device.torch_device)
    policy = compat.ctx.policy_for("sd1")
    mod.device = mod.device_interrogate = mod.device_gfpgan = mod.device_esrgan = mod.device_codeformer = device
    mod.cpu = torch.device("cpu")
    mod.dtype = getattr(torch, policy.dtype, torch.float32)
    mod.dtype_vae = getattr(torch, getattr(policy, "vae_dtype", policy.dtype), torch.float32)
    mod.dtype_unet = mod.dtype
    mod.unet_needs_upcast = False
    mod.has_mps = lambda: compat.ctx.device.kind == "mps"
    mod.get_optimal_device = lambda: device
    mod.get_optimal_device_name = lambda: str(device)
    mod.get_device_for = lambda task: device
    mod.torch_gc = free_memory
    mod.autocast = lambda disable=False: contextlib.nullcontext()
    mod.without_autocast = lambda disable=False: contextlib.nullcontext()
    mod.cond_cast_unet = lambda x: x
    mod.cond_cast_float = lambda x: x
    return mod


# -- modules.shared --------------------------------------------------------------------------------
class _TotalTqdm:
    """shared.total_tqdm: our progress comes from the job queue; kept so calls do not fail."""

    def reset(self): pass

    def update(self): pass

    def updateTotal(self, new_total): pass

    def clear(self): pass


def build_shared(compat) -> types.ModuleType:
    from modules.a1111.options import OptionInfo, options_section

    mod = _module("modules.shared")
    ctx = compat.ctx
    mod.opts = compat.opts
    mod.cmd_opts = compat.cmd_opts
    mod.state = compat.state
    mod.OptionInfo = OptionInfo
    mod.options_section = options_section
    mod.options_templates = {}
    mod.total_tqdm = _TotalTqdm()
    mod.demo = None
    mod.hf_endpoint = "https://huggingface.co"
    mod.log = logging.getLogger("webui.a1111.extension")
    mod.prompt_styles = ctx.styles
    mod.models_path = str(ctx.paths.models_dir)
    mod.script_path = str(ctx.paths.builtin_extensions_dir.parent)
    mod.data_path = str(ctx.paths.data_dir)
    mod.sd_upscalers = compat.upscalers()
    mod.list_checkpoint_tiles = lambda use_short=False: [compat.checkpoint_title(c) for c in ctx.checkpoints.list()]
    mod.refresh_checkpoints = lambda: ctx.checkpoints.refresh()
    mod.reload_hypernetworks = lambda: None
    mod.natural_sort_key = lambda s: [int(t) if t.isdigit() else t.lower() for t in __import__("re").split(r"(\d+)", s)]
    mod.listfiles = lambda dirname: sorted(str(p) for p in Path(dirname).iterdir() if not p.name.startswith("."))
    mod.walk_files = lambda path, allowed_extensions=None: (
        str(p) for p in Path(path).rglob("*")
        if p.is_file() and (not allowed_extensions or p.suffix.lower() in allowed_extensions))
    # shared.sd_model is whatever is loaded now (A1111 loads lazily too): a module-level __getattr__.
    # shared.device too, on first read: detecting the device imports torch, and a script that imports
    # `shared` while the server starts should not hold the first page back for it.
    def lazy(name: str):
        if name == "sd_model":
            return compat.sd_model()
        if name == "device":
            mod.device = build_devices(compat).device
            return mod.device
        return _missing("modules.shared", name)

    mod.__getattr__ = lazy
    return mod


def _missing(module: str, name: str):
    raise AttributeError(f"{module} has no attribute {name!r} in this app (A1111 internals are not provided)")


# -- modules.sd_models / modules.sd_samplers -------------------------------------------------------
class A1111CheckpointInfo:
    """The checkpoint fields A1111 extensions read (title, model_name, hash, filename)."""

    def __init__(self, info, title: str):
        self.filename = str(info.path)
        self.name = info.name
        self.name_for_extra = Path(info.name).stem
        self.model_name = Path(info.name).stem
        self.title = title
        self.hash = info.shorthash
        self.sha256 = info.hash
        self.shorthash = info.shorthash
        self.short_title = self.name_for_extra
        self.ids = [title, info.name, self.model_name]
        self.metadata: dict[str, Any] = {}

    def calculate_shorthash(self):
        return self.shorthash


def build_sd_models(compat) -> types.ModuleType:
    mod = _module("modules.sd_models")
    ctx = compat.ctx

    def infos() -> dict[str, A1111CheckpointInfo]:
        return {compat.checkpoint_title(i): A1111CheckpointInfo(i, compat.checkpoint_title(i))
                for i in ctx.checkpoints.list()}

    def closest(name: str):
        info = ctx.checkpoints.find(str(name))
        return A1111CheckpointInfo(info, compat.checkpoint_title(info)) if info is not None else None

    mod.CheckpointInfo = A1111CheckpointInfo
    mod.__getattr__ = lambda name: infos() if name == "checkpoints_list" else _missing("modules.sd_models", name)
    mod.checkpoint_tiles = lambda use_short=False: list(infos())
    mod.get_closet_checkpoint_match = closest
    mod.list_models = lambda: ctx.checkpoints.refresh()
    mod.select_checkpoint = lambda: closest(ctx.settings.get("sd_model_checkpoint") or "")
    mod.model_hash = lambda filename: None
    return mod


class A1111SamplerData:
    def __init__(self, name: str, aliases: list[str], options: dict[str, Any]):
        self.name, self.aliases, self.options, self.constructor = name, aliases, options, None

    def __iter__(self):  # A1111's SamplerData is a namedtuple
        return iter((self.name, self.constructor, self.aliases, self.options))


def build_sd_samplers(compat) -> types.ModuleType:
    from modules import samplers

    mod = _module("modules.sd_samplers")
    rows = samplers.list_samplers()
    mod.all_samplers = [A1111SamplerData(r["name"], list(r.get("aliases") or []), dict(r.get("options") or {}))
                        for r in rows]
    mod.all_samplers_map = {s.name: s for s in mod.all_samplers}
    # lower-case name or alias -> name: how A1111 scripts check and normalise a sampler a user typed
    mod.samplers_map = {alias.lower(): s.name for s in mod.all_samplers for alias in (s.name, *s.aliases)}
    mod.samplers = mod.samplers_for_img2img = list(mod.all_samplers)
    mod.visible_sampler_names = lambda: [s.name for s in mod.all_samplers]
    mod.find_sampler_config = lambda name: mod.all_samplers_map.get(name)
    mod.set_samplers = lambda: None
    return mod


# -- modules.images --------------------------------------------------------------------------------
def build_images(compat) -> types.ModuleType:
    from PIL import Image

    from modules.images.saving import SaveOptions, make_grid, read_image_info
    from modules.images.saving import save_image as save_one

    mod = _module("modules.images")

    def save_image(image, path, basename="", seed=None, prompt=None, extension="png", info=None,
                   short_filename=False, no_prompt=False, grid=False, pnginfo_section_name="parameters", p=None,
                   existing_info=None, forced_filename=None, suffix="", save_to_dirs=None):
        values = compat.ctx.settings.as_dict()
        options = SaveOptions.from_settings({**values, "samples_format": extension})
        # A1111's rules: subfolders for grids with grid_save_to_dirs, for images with save_to_dirs (not for
        # no_prompt saves); no name decoration for short names or without a seed; forced_filename as given.
        if save_to_dirs is None:
            save_to_dirs = bool(values.get("grid_save_to_dirs", True)) if grid else \
                bool(values.get("save_to_dirs", True)) and not no_prompt
        pattern = "" if short_filename or seed is None else options.filename_pattern
        options = replace(options, directory_pattern=options.directory_pattern if save_to_dirs else "",
                          filename_pattern=pattern + str(suffix or ""))
        if forced_filename:
            options = replace(options, filename_pattern=str(forced_filename), add_number=False)
        tokens = {"seed": seed, "prompt": prompt or ""}
        if p is not None:
            tokens.update({k: getattr(p, a) for k, a in (("steps", "steps"), ("cfg", "cfg_scale"),
                           ("width", "width"), ("height", "height"), ("sampler", "sampler_name"))
                           if getattr(p, a, None) is not None})
        extra = {str(k): str(v) for k, v in (existing_info or {}).items() if k != pnginfo_section_name}
        saved = save_one(image, path, options, infotext=info or "", basename="" if forced_filename else basename,
                         tokens=tokens, extra_info=extra or None)
        txt = saved.with_suffix(".txt")
        return str(saved), (str(txt) if info and txt.exists() else None)

    def resize_image(resize_mode, im, width, height, upscaler_name=None, force_RGBA=False):
        from modules.generation.masks import resize_image as ours

        return ours(im, int(width), int(height), int(resize_mode))

    def image_grid(imgs, batch_size=1, rows=None):
        return make_grid(list(imgs), rows=rows, batch_size=batch_size)

    def read_info_from_image(image):
        text, items = read_image_info(image)
        return text, items

    def check_grid_size(imgs) -> bool:
        """A1111: False when a grid of `imgs` would exceed the img_max_size_mp setting (megapixels)."""
        megapixels = round(sum(im.width * im.height for im in imgs) / 1_000_000)
        return megapixels <= grid_limit_megapixels(compat.opts)

    mod.save_image = save_image
    mod.resize_image = resize_image
    mod.image_grid = image_grid
    mod.read_info_from_image = read_info_from_image
    mod.check_grid_size = check_grid_size
    mod.GridAnnotation = GridAnnotation
    mod.draw_grid_annotations = draw_grid_annotations
    mod.draw_prompt_matrix = draw_prompt_matrix
    mod.Image = Image
    mod.LANCZOS = Image.Resampling.LANCZOS
    mod.NEAREST = Image.Resampling.NEAREST
    return mod


def grid_limit_megapixels(opts) -> float:
    """A1111's img_max_size_mp (default 200): the largest grid, in megapixels, scripts may build."""
    return float(getattr(opts, "img_max_size_mp", 200) or 200)


# -- modules.images: labelled grids (A1111's GridAnnotation / draw_grid_annotations) ---------------
# Behaviour kept from A1111: labels are centred above each column and left of each row in black on
# white, wrapped to fit, with a left pad of 3/4 of a cell when any row has a label; the font size
# follows the cell size; `margin` pixels separate the cells; inactive labels (prompt matrix) are grey
# and struck through. Pillow's built-in font, so no font file is needed.
LABEL_ACTIVE = (0, 0, 0)
LABEL_INACTIVE = (153, 153, 153)


class GridAnnotation:
    """One label line of a grid column or row."""

    def __init__(self, text: str = "", is_active: bool = True):
        self.text = str(text)
        self.is_active = bool(is_active)
        self.size: tuple[int, int] = (0, 0)
        self.font = None
        self.wrapped = self.text


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=max(1, int(size)))


def _wrap(draw, text: str, font, max_width: float) -> str:
    """Greedy word wrap, so a long label stays inside its column."""
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            trial = f"{line} {word}" if line else word
            if line and draw.textlength(trial, font=font) > max_width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return "\n".join(lines)


def _fit_labels(draw, labels: list[GridAnnotation], fontsize: int, max_width: float) -> int:
    """Wrap each label to `max_width` (shrinking the font for words that still do not fit); returns the
    height of the block of labels, `spacing` between lines included."""
    spacing = fontsize // 2
    for label in labels:
        size = fontsize
        while True:
            font = _font(size)
            wrapped = _wrap(draw, label.text, font, max_width)
            box = draw.multiline_textbbox((0, 0), wrapped, font=font)
            if box[2] - box[0] <= max_width or size <= 1:
                break
            size -= 1
        label.font, label.wrapped = font, wrapped
        label.size = (box[2] - box[0], box[3] - box[1])
    return sum(label.size[1] for label in labels) + spacing * max(0, len(labels) - 1)


def _draw_labels(draw, x: float, y: float, labels: list[GridAnnotation], fontsize: int) -> None:
    spacing = fontsize // 2
    for label in labels:
        colour = LABEL_ACTIVE if label.is_active else LABEL_INACTIVE
        middle = y + label.size[1] / 2
        draw.multiline_text((x, middle), label.wrapped, font=label.font, fill=colour, anchor="mm", align="center")
        if not label.is_active:
            half = label.size[0] / 2
            draw.line((x - half, middle, x + half, middle), fill=colour, width=max(1, fontsize // 8))
        y += label.size[1] + spacing


def draw_grid_annotations(im, width, height, hor_texts, ver_texts, margin=0):
    """A labelled copy of grid `im` made of `width` x `height` cells: `hor_texts[col]` above each column,
    `ver_texts[row]` left of each row (lists of GridAnnotation), `margin` pixels between cells."""
    from PIL import Image, ImageDraw

    width, height, margin = int(width), int(height), int(margin or 0)
    cols, rows = im.width // width, im.height // height
    if len(hor_texts) != cols or len(ver_texts) != rows:
        raise ValueError(f"a grid of {cols}x{rows} cells needs {cols} column and {rows} row labels, "
                         f"got {len(hor_texts)} and {len(ver_texts)}")
    fontsize = max(1, (width + height) // 25)
    spacing = fontsize // 2
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    has_row_labels = any(label.text for labels in ver_texts for label in labels)
    pad_left = width * 3 // 4 if has_row_labels else 0
    hor_heights = [_fit_labels(measure, labels, fontsize, width) for labels in hor_texts]
    ver_heights = [_fit_labels(measure, labels, fontsize, pad_left) for labels in ver_texts]
    has_column_labels = any(label.text for labels in hor_texts for label in labels)
    pad_top = max(hor_heights) + spacing * 2 if has_column_labels else 0

    result = Image.new("RGB", (im.width + pad_left + margin * (cols - 1),
                               im.height + pad_top + margin * (rows - 1)), "white")
    for row in range(rows):
        for col in range(cols):
            cell = im.crop((width * col, height * row, width * (col + 1), height * (row + 1)))
            result.paste(cell, (pad_left + (width + margin) * col, pad_top + (height + margin) * row))
    draw = ImageDraw.Draw(result)
    for col, labels in enumerate(hor_texts):
        x = pad_left + (width + margin) * col + width / 2
        _draw_labels(draw, x, pad_top / 2 - hor_heights[col] / 2, labels, fontsize)
    for row, labels in enumerate(ver_texts):
        y = pad_top + (height + margin) * row + height / 2 - ver_heights[row] / 2
        _draw_labels(draw, pad_left / 2, y, labels, fontsize)
    return result


def draw_prompt_matrix(im, width, height, all_prompts, margin=0):
    """A1111's prompt matrix labels: the variable parts (all_prompts[1:]) split between columns (first
    half) and rows; each column/row lists its parts, grey and struck through where they are left out."""
    import math

    parts = list(all_prompts[1:])
    boundary = math.ceil(len(parts) / 2)
    horizontal, vertical = parts[:boundary], parts[boundary:]
    hor_texts = [[GridAnnotation(x, is_active=bool(pos & (1 << i))) for i, x in enumerate(horizontal)]
                 for pos in range(1 << len(horizontal))]
    ver_texts = [[GridAnnotation(x, is_active=bool(pos & (1 << i))) for i, x in enumerate(vertical)]
                 for pos in range(1 << len(vertical))]
    return draw_grid_annotations(im, width, height, hor_texts, ver_texts, margin)


# -- launch / modules.launch_utils -----------------------------------------------------------------
def build_launch(compat, name: str = "launch") -> types.ModuleType:
    from modules.extensions.requirements_guard import install_requirements, installed_version

    mod = _module(name)

    def is_installed(package: str) -> bool:
        return installed_version(package.split("[")[0].strip()) is not None

    def run_pip(command: str, desc: str | None = None, live: bool = False):
        """A1111's run_pip('install x y', ...): routed through our requirements guard."""
        words = command.split()
        if not words or words[0] != "install":
            raise RuntimeError(f"run_pip {command!r}: only 'install' is supported for extensions")
        requirements = [w for w in words[1:] if w not in ("-U", "--upgrade", "--prefer-binary", "--user")]
        result = install_requirements(requirements)
        compat.note_install(result)
        if not result.ok:
            raise RuntimeError(f"Couldn't install {desc or ' '.join(requirements)}: {result.message}")
        return result.message

    def run(command, desc=None, errdesc=None, custom_env=None, live=False):
        done = subprocess.run(command, shell=isinstance(command, str), capture_output=True, text=True,
                              env=custom_env)
        if done.returncode != 0:
            raise RuntimeError(f"{errdesc or 'command failed'}: {done.stderr.strip()[-500:]}")
        return done.stdout

    mod.is_installed = is_installed
    mod.run_pip = run_pip
    mod.run = run
    mod.python = sys.executable
    mod.git = shutil.which("git") or "git"
    mod.index_url = ""
    mod.dir_repos = str(Path(compat.ctx.paths.data_dir) / "repositories")
    mod.repo_dir = lambda name: str(Path(mod.dir_repos) / name)
    mod.args = compat.cmd_opts
    mod.commit_hash = lambda: ""
    mod.git_tag = lambda: ""
    return mod


# -- modules.errors / modules.call_queue / modules.infotext_utils ----------------------------------
def build_errors(compat) -> types.ModuleType:
    mod = _module("modules.errors")

    def report(message: str, *, exc_info: bool = False):
        compat.report(compat.current_extension() or "unknown", message)

    mod.report = report
    mod.display = lambda e, task, **kw: compat.report(compat.current_extension() or "unknown", f"{task}: {e}")
    mod.display_once = mod.display
    mod.print_error_explanation = lambda message: log.error(message)
    mod.run = lambda code, task: _run_reporting(code, task, compat)
    return mod


def _run_reporting(code, task, compat):
    try:
        code()
    except Exception as exc:
        compat.report(compat.current_extension() or "unknown", f"{task}: {exc}")


def build_call_queue(compat) -> types.ModuleType:
    """wrap_gradio_gpu_call & co: our job queue already serialises GPU work; the wrappers pass through."""
    mod = _module("modules.call_queue")

    def wrap_queued_call(func):
        return func

    def wrap_gradio_gpu_call(func, extra_outputs=None):
        return func

    def wrap_gradio_call(func, extra_outputs=None, add_stats=False):
        return func

    mod.wrap_queued_call = wrap_queued_call
    mod.wrap_gradio_gpu_call = wrap_gradio_gpu_call
    mod.wrap_gradio_call = wrap_gradio_call
    mod.queue_lock = contextlib.nullcontext()
    return mod


def build_infotext_utils(compat, name: str) -> types.ModuleType:
    from modules.images.infotext import parse_infotext

    mod = _module(name)
    mod.parse_generation_parameters = lambda x, skip_fields=None: parse_infotext(x or "", skip_fields or ())
    mod.registered_param_bindings = []
    mod.paste_fields = {}
    mod.register_paste_params_button = lambda binding: mod.registered_param_bindings.append(binding)
    mod.ParamBinding = lambda *args, **kwargs: (args, kwargs)
    mod.image_from_url_text = lambda filedata: None
    mod.quote = lambda text: text if "," not in str(text) else '"' + str(text).replace('"', '\\"') + '"'
    return mod
