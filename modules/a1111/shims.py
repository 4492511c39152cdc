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
    mod.device = build_devices(compat).device
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
    mod.__getattr__ = lambda name: compat.sd_model() if name == "sd_model" else _missing("modules.shared", name)
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
    mod.samplers = mod.samplers_for_img2img = list(mod.all_samplers)
    mod.visible_sampler_names = lambda: [s.name for s in mod.all_samplers]
    mod.find_sampler_config = lambda name: mod.all_samplers_map.get(name)
    mod.set_samplers = lambda: None
    return mod


# -- modules.images --------------------------------------------------------------------------------
def build_images(compat) -> types.ModuleType:
    from PIL import Image

    from modules.images.saving import SaveOptions, make_grid, read_image_info, save_image as save_one

    mod = _module("modules.images")

    def save_image(image, path, basename="", seed=None, prompt=None, extension="png", info=None,
                   short_filename=False, no_prompt=False, grid=False, pnginfo_section_name="parameters", p=None,
                   existing_info=None, forced_filename=None, suffix="", save_to_dirs=None):
        options = SaveOptions.from_settings({**compat.ctx.settings.as_dict(), "samples_format": extension})
        tokens = {"seed": seed, "prompt": prompt or ""}
        saved = save_one(image, path, options, infotext=info or "", basename=forced_filename or basename,
                         tokens=tokens)
        return str(saved), None

    def resize_image(resize_mode, im, width, height, upscaler_name=None, force_RGBA=False):
        from modules.generation.masks import resize_image as ours

        return ours(im, int(width), int(height), int(resize_mode))

    def image_grid(imgs, batch_size=1, rows=None):
        return make_grid(list(imgs), rows=rows, batch_size=batch_size)

    def read_info_from_image(image):
        text, items = read_image_info(image)
        return text, items

    mod.save_image = save_image
    mod.resize_image = resize_image
    mod.image_grid = image_grid
    mod.read_info_from_image = read_info_from_image
    mod.Image = Image
    mod.LANCZOS = Image.Resampling.LANCZOS
    mod.NEAREST = Image.Resampling.NEAREST
    return mod


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
