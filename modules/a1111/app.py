"""A1111Compat: one app's A1111 adapter. Loads A1111-style extensions (install.py, scripts/*.py,
javascript/, style.css) with A1111's module names in scope, and runs their Scripts around our core
through the extension hook points.

How a generation runs when A1111 scripts are loaded (A1111's order, our core underneath):
run_job wrapper -> p from the request -> always-on `setup` -> selected script's `run(p, *args)` or
`process_images(p)` -> `before_process`, seeds and prompts, `process` -> our generation, whose
before_batch / after_batch / after_image / before_save hooks call `before_process_batch` +
`process_batch`, `postprocess_batch` + `postprocess_batch_list`, `postprocess_image` and
`on_before_image_saved` -> `postprocess(p, processed)`.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modules.a1111 import processing, shims
from modules.a1111.callbacks import Callbacks, CFGDenoiserParams, ImageSaveParams
from modules.a1111.importer import A1111Imports, UnsupportedA1111Import, extension_finder
from modules.a1111.options import Opts
from modules.a1111.scripts import (
    AlwaysVisible,
    LoadedScript,
    OnComponent,
    PostprocessBatchListArgs,
    PostprocessImageArgs,
    Script,
    ScriptRunner,
)
from modules.a1111.state import State
from modules.extensions.hooks import ExtensionHookError, describe_exception
from modules.extensions.registry import Contributions
from modules.images.outputs import OutputDirs
from modules.types import GenerationRequest, UserInputError

log = logging.getLogger("webui.a1111")

COMPAT_NAME = "a1111-compat"  # the name its hooks are registered under


@dataclass
class _Frame:
    """One running A1111-style job on the worker thread: its runner, request, core run, current p."""

    runner: ScriptRunner
    request: GenerationRequest
    run: Any
    info: Any
    p: Any = None
    required: set[str] = field(default_factory=set)


class A1111Compat:
    """The A1111 extension adapter of one app (`ctx` is the AppContext, taken duck-typed)."""

    def __init__(self, ctx, registry):
        self.ctx = ctx
        self.registry = registry
        self.imports = A1111Imports()
        self._current: list[str] = []  # extensions whose code is being imported or set up (a stack)
        self.script_path = Path(ctx.paths.builtin_extensions_dir).parent
        self.current_basedir = str(self.script_path)
        self.opts = Opts(ctx.settings, self.current_extension)
        self.state = State(ctx.jobs)
        self.cmd_opts = build_cmd_opts(ctx.flags)
        self.callbacks = Callbacks(self.current_extension, self.report)
        self.runners = {"txt2img": ScriptRunner("txt2img"), "img2img": ScriptRunner("img2img")}
        self.install_notes: list[str] = []
        self._local = threading.local()
        self._hooks_registered = False
        self._provide_modules()

    # -- reporting and context ------------------------------------------------------------------
    def current_extension(self) -> str | None:
        return self._current[-1] if self._current else None

    def report(self, extension: str, message: str) -> None:
        self.registry.errors.add(extension, message)
        log.error("Extension %s: %s", extension, message)

    def note_install(self, result) -> None:
        self.install_notes.append(f"{self.current_extension() or 'extension'}: {result.message}")

    @contextlib.contextmanager
    def running(self, extension: str, basedir: Path | None = None):
        """While extension code runs: its name for callbacks and errors, scripts.basedir(), sys.path."""
        self._current.append(extension)
        previous_basedir = self.current_basedir
        added_path = None
        if basedir is not None:
            self.current_basedir = str(basedir)
            added_path = str(basedir)
            sys.path.insert(0, added_path)
        try:
            yield
        finally:
            self._current.pop()
            self.current_basedir = previous_basedir
            if added_path is not None:
                with contextlib.suppress(ValueError):
                    sys.path.remove(added_path)

    # -- the modules extensions import ----------------------------------------------------------
    def _provide_modules(self) -> None:
        provide = self.imports.provide
        provide("modules.scripts", self._scripts_module)
        provide("modules.processing", self._processing_module)
        provide("modules.script_callbacks", self.callbacks.module)
        provide("modules.shared", lambda: shims.build_shared(self))
        provide("modules.shared_state", lambda: _single("modules.shared_state", State=State, state=self.state))
        provide("modules.options", lambda: _single("modules.options", OptionInfo=shims_option_info(),
                                                    Options=Opts))
        provide("modules.paths", lambda: shims.build_paths(self))
        provide("modules.paths_internal", lambda: shims.build_paths(self))
        provide("modules.devices", lambda: shims.build_devices(self))
        provide("modules.sd_models", lambda: shims.build_sd_models(self))
        provide("modules.sd_samplers", lambda: shims.build_sd_samplers(self))
        provide("modules.images", lambda: shims.build_images(self))
        provide("modules.errors", lambda: shims.build_errors(self))
        provide("modules.call_queue", lambda: shims.build_call_queue(self))
        provide("modules.infotext_utils", lambda: shims.build_infotext_utils(self, "modules.infotext_utils"))
        provide("modules.generation_parameters_copypaste",
                lambda: shims.build_infotext_utils(self, "modules.generation_parameters_copypaste"))
        provide("modules.launch_utils", lambda: shims.build_launch(self, "modules.launch_utils"))
        provide("launch", lambda: shims.build_launch(self, "launch"))

    def _scripts_module(self):
        from modules.a1111 import scripts as ours

        mod = _single("modules.scripts", Script=Script, AlwaysVisible=AlwaysVisible,
                      PostprocessImageArgs=PostprocessImageArgs, PostprocessBatchListArgs=PostprocessBatchListArgs,
                      OnComponent=OnComponent, ScriptRunner=ScriptRunner, title_key=ours.title_key)
        mod.basedir = lambda: self.current_basedir
        mod.scripts_txt2img = self.runners["txt2img"]
        mod.scripts_img2img = self.runners["img2img"]
        mod.scripts_postproc = None
        mod.scripts_data = []
        mod.postprocessing_scripts_data = []
        return mod

    def _processing_module(self):
        mod = _single("modules.processing", StableDiffusionProcessing=processing.StableDiffusionProcessing,
                      StableDiffusionProcessingTxt2Img=processing.StableDiffusionProcessingTxt2Img,
                      StableDiffusionProcessingImg2Img=processing.StableDiffusionProcessingImg2Img,
                      Processed=processing.Processed, fix_seed=processing.fix_seed,
                      get_fixed_seed=processing.get_fixed_seed)
        mod.process_images = self.process_images
        mod.create_infotext = self.create_infotext
        mod.opt_C = 4
        mod.opt_f = 8
        return mod

    # -- app data extensions read ---------------------------------------------------------------
    def checkpoint_title(self, info) -> str:
        return self.ctx.checkpoints.title_of(info)

    def upscalers(self) -> list[Any]:
        try:
            from modules.postprocessing.upscalers import registry_for

            names = registry_for(self.ctx).names()
        except Exception:
            names = ["None", "Lanczos", "Nearest"]
        from types import SimpleNamespace

        return [SimpleNamespace(name=n, model_name=n, data_path="", scale=4) for n in names]

    def sd_model(self):
        """shared.sd_model: the loaded diffusers pipeline, with A1111's family flags on it."""
        current = self.ctx.pipelines.current
        if current is None:
            return None
        pipe = current.pipe
        arch = str(getattr(current, "architecture", "")).lower()
        for name, value in (("is_sdxl", current.family == "sdxl"), ("is_sd2", "sd2" in arch),
                            ("is_sd1", current.family != "sdxl" and "sd2" not in arch), ("is_sd3", False)):
            with contextlib.suppress(Exception):
                setattr(pipe, name, value)
        with contextlib.suppress(Exception):
            title = self.checkpoint_title(current.checkpoint)
            pipe.sd_checkpoint_info = shims.A1111CheckpointInfo(current.checkpoint, title)
            pipe.sd_model_checkpoint = str(current.checkpoint.path)
            pipe.sd_model_hash = current.checkpoint.shorthash
        return pipe

    # -- loading --------------------------------------------------------------------------------
    def load_extension(self, info, registry) -> None:
        """The loader's a1111 hook: install.py, then every scripts/*.py; failures reported per file."""
        root = Path(info.path)
        extension_finder().register(root, self.imports)
        problems: list[str] = []
        loaded_classes = 0
        with self.running(info.name, root):
            if (root / "install.py").is_file() and not getattr(self.ctx.flags, "skip_install", False):
                problems += self._run_file(info.name, root / "install.py", "install.py")
            for script_file in sorted((root / "scripts").glob("*.py")):
                module, errors = self._import_script(info.name, script_file)
                problems += errors
                if module is not None:
                    loaded_classes += self._register_scripts(info.name, module, script_file)
        contributions = Contributions()
        contributions.javascript += sorted((root / "javascript").glob("*.js"))
        if (root / "style.css").is_file():
            contributions.css.append(root / "style.css")
        registry.commit(info.name, contributions)
        self._ensure_hooks()
        if problems:
            info.error = "; ".join(problems)
            if loaded_classes == 0 and any((root / "scripts").glob("*.py")):
                info.status = "failed"

    def _run_file(self, extension: str, path: Path, label: str) -> list[str]:
        try:
            self.imports.exec_file(path, f"webui_a1111.{_safe(extension)}.{path.stem}_install")
        except SystemExit as exc:
            if exc.code not in (None, 0):
                return [self._reported(extension, f"{label} exited with {exc.code}")]
        except Exception as exc:
            return [self._reported(extension, f"{label}: {describe_exception(exc)}")]
        return []

    def _import_script(self, extension: str, path: Path):
        name = f"webui_a1111.{_safe(extension)}.{path.stem}"
        try:
            return self.imports.exec_file(path, name), []
        except UnsupportedA1111Import as exc:
            return None, [self._reported(extension, f"scripts/{path.name}: not supported: {exc}")]
        except SyntaxError as exc:
            return None, [self._reported(extension, f"scripts/{path.name}: syntax error at line {exc.lineno}: "
                                                    f"{exc.msg}")]
        except Exception as exc:
            return None, [self._reported(extension, f"scripts/{path.name}: {describe_exception(exc)}")]

    def _reported(self, extension: str, message: str) -> str:
        self.report(extension, message)
        return message

    def _register_scripts(self, extension: str, module, path: Path) -> int:
        count = 0
        for value in list(vars(module).values()):
            if not (isinstance(value, type) and issubclass(value, Script) and value is not Script):
                continue
            if value.__module__ != module.__name__:
                continue  # imported from another file: registered where it is defined
            for runner in self.runners.values():
                if runner.add(value, extension, str(path), self.report) is not None:
                    count += 1
        return count

    def finish_loading(self) -> None:
        """After every extension loaded: on_ui_settings callbacks add their options (A1111 calls them
        while building Settings; they are needed for /sdapi/v1/options even without the UI)."""
        for extension, fn in self.callbacks.registered("ui_settings"):
            with self.running(extension):
                try:
                    fn()
                except Exception as exc:
                    self.report(extension, f"on_ui_settings: {describe_exception(exc)}")

    def scripts(self, tab: str) -> list[LoadedScript]:
        return list(self.runners[tab].scripts)

    # -- hooks into our generation --------------------------------------------------------------
    def _ensure_hooks(self) -> None:
        if self._hooks_registered:
            return
        self._hooks_registered = True
        contributions = Contributions()
        contributions.hooks += [
            ("run_job", self._run_job, -100),
            ("before_batch", self._before_batch, 0),
            ("after_batch", self._after_batch, 0),
            ("after_image", self._after_image, 0),
            ("before_save", self._before_save, 0),
            ("after_save", self._after_save, 0),
            ("on_step", self._on_step, 0),
        ]
        self.registry.commit(COMPAT_NAME, contributions)

    def _frame(self) -> _Frame | None:
        stack = getattr(self._local, "stack", None)
        return stack[-1] if stack else None

    def _run_job(self, request: GenerationRequest, info, run):
        runner = self.runners["img2img" if request.mode == "img2img" else "txt2img"]
        selected = runner.find(request.script_name) if request.script_name else None
        always = [s for s in runner.scripts if s.alwayson]
        if selected is None and not always:
            return None  # nothing of A1111's to run: the normal generation
        required = {s.key for s in always if s.key in request.extensions}
        if selected is not None:
            required.add(selected.key)
        p = processing.p_from_request(request)
        # A1111 scripts save their own files to p.outpath_samples / p.outpath_grids (the outdir_* settings).
        folders = OutputDirs.from_settings({**self.ctx.settings.as_dict(), **request.override_settings},
                                           self.ctx.paths.data_dir)
        p.outpath_samples = str(folders.folder(request.mode))
        p.outpath_grids = str(folders.folder(f"{request.mode}-grids"))
        p.scripts = runner
        p.script_args = self._flat_args(runner, request, selected)
        frame = _Frame(runner, request, run, info, p, required)
        stack = self._local.__dict__.setdefault("stack", [])
        stack.append(frame)
        try:
            self._call_alwayson(frame, "setup", p)
            if selected is not None:
                processed = self._call(frame, selected, "run", p, *self._args(frame, selected), fail_job=True)
                if processed is None:
                    processed = self.process_images(p)
            else:
                processed = self.process_images(p)
        finally:
            stack.pop()
        result = processing.result_from_processed(processed, warnings=list(getattr(info, "warnings", [])))
        if p.do_not_save_grid:
            # The script said so (Prompts from file; A1111's process_images then makes no grid): the
            # images are shown as the script returned them, with no grid of ours added.
            result.extra["no_grid"] = True
        return result

    def process_images(self, p):
        """A1111's process_images(p): inside a job, our generation for what p says now."""
        frame = self._frame()
        if frame is None:
            return self._process_outside_job(p)
        previous_p, frame.p = frame.p, p
        try:
            processing.fix_seed(p)
            if p.scripts is None:
                p.scripts = frame.runner
            self._call_alwayson(frame, "before_process", p)
            if p.all_prompts is None:
                self._setup_prompts(p)
            count = len(p.all_prompts)
            if p.all_seeds is None:
                p.all_seeds = _per_image(p.seed, count)
            if p.all_subseeds is None:
                p.all_subseeds = _per_image(p.subseed, count)
            if isinstance(p.seed, (list, tuple)):
                p.seed = p.all_seeds[0]
            if isinstance(p.subseed, (list, tuple)):
                p.subseed = p.all_subseeds[0]
            self._call_alwayson(frame, "process", p)
            request = processing.request_from_p(p, base=frame.request)
            frame.info.params.update(p.extra_generation_params or {})
            result = frame.run(request)
            processed = processing.processed_from_result(p, result)
            self._call_alwayson(frame, "postprocess", p, processed)
            return processed
        finally:
            frame.p = previous_p

    def _setup_prompts(self, p) -> None:
        styles = self.ctx.styles
        p.setup_prompts()
        if p.styles and styles is not None:
            p.all_prompts = [styles.apply_styles_to_prompt(x, p.styles) for x in p.all_prompts]
            p.all_negative_prompts = [styles.apply_negative_styles_to_prompt(x, p.styles)
                                      for x in p.all_negative_prompts]
            p.styles = []  # applied: the core must not apply them again

    def _process_outside_job(self, p):
        """process_images from a button or route of an extension: queue the job and wait for it."""
        from modules.generation.service import submit_generation

        job = submit_generation(self.ctx, processing.request_from_p(p))
        job.wait()
        if job.error:
            raise RuntimeError(job.error)
        return processing.processed_from_result(p, job.result)

    def create_infotext(self, p, all_prompts=None, all_seeds=None, all_subseeds=None, comments=None,
                        iteration=0, position_in_batch=0, use_main_prompt=False, index=None,
                        all_negative_prompts=None):
        from modules.generation.info import image_infotext

        index = position_in_batch + iteration * int(p.batch_size) if index is None else index
        prompts = all_prompts or p.all_prompts or [p.main_prompt]
        seeds = all_seeds or p.all_seeds or [p.seed]
        subseeds = all_subseeds or p.all_subseeds or [p.subseed]
        negatives = all_negative_prompts or p.all_negative_prompts or [p.main_negative_prompt]
        pick = (lambda values: values[min(index, len(values) - 1)]) if not use_main_prompt else (lambda v: v[0])
        current = self.ctx.pipelines.current
        return image_infotext(processing.request_from_p(p), current, prompt=pick(prompts), negative=pick(negatives),
                              seed=int(pick(seeds)), subseed=int(pick(subseeds)), schedule=p.scheduler,
                              extra=dict(p.extra_generation_params or {}))

    # per-batch and per-image bridges
    def _before_batch(self, batch, info) -> None:
        frame = self._frame()
        if frame is None or frame.p is None:
            return
        p = frame.p
        p.iteration = batch.index
        p.prompts, p.negative_prompts = list(batch.prompts), list(batch.negative_prompts)
        p.seeds, p.subseeds = list(batch.seeds), list(batch.subseeds)
        for method in ("before_process_batch", "process_batch"):
            self._call_alwayson(frame, method, p, batch_number=batch.index, prompts=p.prompts, seeds=p.seeds,
                                subseeds=p.subseeds)
        batch.prompts[:], batch.negative_prompts[:] = p.prompts, p.negative_prompts
        batch.seeds[:], batch.subseeds[:] = p.seeds, p.subseeds
        info.params.update(p.extra_generation_params or {})

    def _after_batch(self, batch, images, info) -> None:
        frame = self._frame()
        if frame is None or frame.p is None:
            return
        self._call_alwayson(frame, "postprocess_batch", frame.p, images=images, batch_number=batch.index)
        pp = PostprocessBatchListArgs(list(images))
        self._call_alwayson(frame, "postprocess_batch_list", frame.p, pp, batch_number=batch.index)
        images[:] = pp.images

    def _after_image(self, image, image_info, info):
        frame = self._frame()
        if frame is None or frame.p is None:
            return None
        pp = PostprocessImageArgs(image)
        self._call_alwayson(frame, "postprocess_image", frame.p, pp)
        return pp.image

    def _before_save(self, save, info) -> None:
        if not self.callbacks.registered("before_image_saved"):
            return
        frame = self._frame()
        params = ImageSaveParams(save.image, frame.p if frame else None, save.path, {"parameters": save.infotext})
        self.callbacks.call("before_image_saved", params)
        save.image = params.image
        save.infotext = params.pnginfo.get("parameters", save.infotext)

    def _after_save(self, path, info) -> None:
        if not self.callbacks.registered("image_saved"):
            return
        frame = self._frame()
        self.callbacks.call("image_saved", ImageSaveParams(None, frame.p if frame else None, str(path), {}))

    def _on_step(self, step, info) -> None:
        if not self.callbacks.registered("cfg_denoiser"):
            return
        params = CFGDenoiserParams(x=step.latents, image_cond=None, sigma=getattr(step, "sigma", None),
                                   sampling_step=step.index, total_sampling_steps=step.total, text_cond=None,
                                   text_uncond=None)
        self.callbacks.call("cfg_denoiser", params)
        if params.x is not step.latents:
            step.latents = params.x

    # -- calling scripts ------------------------------------------------------------------------
    def _flat_args(self, runner: ScriptRunner, request: GenerationRequest, selected: LoadedScript | None):
        """p.script_args as A1111 lays them out: [selected index, *each script's args]; sets each
        script's args_from/args_to to its slice (the given args, padded with the ui() defaults)."""
        flat: list[Any] = [0]
        if selected is not None:
            flat[0] = 1 + [s for s in runner.scripts if not s.alwayson].index(selected)
        for loaded in runner.scripts:
            args = self._given_args(loaded, request, selected)
            loaded.script.args_from = len(flat)
            flat += args
            loaded.script.args_to = len(flat)
        return flat

    def _given_args(self, loaded: LoadedScript, request: GenerationRequest, selected) -> list[Any]:
        if loaded.alwayson:
            entry = request.extensions.get(loaded.key)
            given = list(entry.get("args") or []) if isinstance(entry, dict) else list(entry or [])
        else:
            given = list(request.script_args) if loaded is selected else []
        defaults = list(loaded.defaults)
        return given + defaults[len(given):]

    def _args(self, frame: _Frame, loaded: LoadedScript) -> list[Any]:
        script = loaded.script
        if script.args_from is not None and script.args_to is not None:
            args = frame.p.script_args[script.args_from:script.args_to]
            if len(args) == script.args_to - script.args_from:
                return list(args)
        return self._given_args(loaded, frame.request, None if loaded.alwayson else loaded)

    def _call_alwayson(self, frame: _Frame, method: str, *args: Any, **kwargs: Any) -> None:
        for loaded in frame.runner.scripts:
            if loaded.alwayson:
                self._call(frame, loaded, method, args[0], *args[1:], *self._args(frame, loaded), **kwargs)

    def _call(self, frame: _Frame, loaded: LoadedScript, method: str, p, *args: Any, fail_job: bool = False,
              **kwargs: Any):
        fn = getattr(loaded.script, method, None)
        if fn is None:
            return None
        try:
            with self.running(loaded.extension):
                return fn(p, *args, **kwargs)
        except (UserInputError, ExtensionHookError):
            raise
        except Exception as exc:
            message = f"{loaded.title}.{method}: {describe_exception(exc)}"
            self.report(loaded.extension, message)
            if fail_job or loaded.key in frame.required:
                raise ExtensionHookError(f"extension {loaded.extension!r} failed in {message}") from None
            return None


def _per_image(seed, count: int) -> list[int]:
    """One seed per image: a list a script set is used as it is, else seed + i (as our core does)."""
    if isinstance(seed, (list, tuple)):
        seeds = [int(s) for s in seed][:count]
        return seeds + [seeds[-1] + i + 1 for i in range(count - len(seeds))] if seeds else list(range(count))
    return [int(seed) + i for i in range(count)]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def _single(name: str, **attributes: Any):
    import types

    mod = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(mod, key, value)
    return mod


def shims_option_info():
    from modules.a1111.options import OptionInfo

    return OptionInfo


# A1111 flags extensions read from shared.cmd_opts, with A1111's defaults, beyond the ones we have.
A1111_FLAG_DEFAULTS: dict[str, Any] = {
    "disable_safe_unpickle": False, "upcast_sampling": False, "always_batch_cond_uncond": False,
    "disable_nan_check": False, "share": False, "ngrok": None, "freeze_settings": False,
    "hide_ui_dir_config": False, "disable_extension_access": False, "no_gradio_queue": False,
    "gradio_debug": False, "subpath": "", "hypernetwork_dir": None, "textual_inversion_templates_dir": None,
    "ui_config_file": None, "ui_settings_file": None, "vae_path": None, "no_hashing": False,
    "do_not_download_clip": False, "opt_split_attention": False, "opt_split_attention_v1": False,
    "opt_sub_quad_attention": False, "disable_opt_split_attention": False, "force_enable_xformers": False,
    "lora_dir": None, "lyco_dir_backcompat": None, "server_name": None, "tls_keyfile": None,
    "tls_certfile": None, "cors_allow_origins": None, "cors_allow_origins_regex": None,
    "api_log": False, "timeout_keep_alive": 30, "skip_version_check": True, "reinstall_xformers": False,
    "reinstall_torch": False, "update_check": False, "test_server": False, "log_startup": False,
    "skip_python_version_check": True, "skip_load_model_at_start": False, "no_progressbar_hiding": False,
    "max_batch_count": 16, "enable_console_prompts": False, "administrator": False, "localizations_dir": None,
    "allow_code": False, "medvram_sdxl": False, "use_textbox_seed": False, "unload_gfpgan": False,
    "gfpgan_models_path": None, "codeformer_models_path": None, "esrgan_models_path": None,
    "realesrgan_models_path": None, "dat_models_path": None, "clip_models_path": None,
    "no_download_sd_model": False, "device_id": None,
}


def build_cmd_opts(flags) -> argparse.Namespace:
    """shared.cmd_opts: our flags under A1111's names, A1111's defaults for the rest, extension flags."""
    import dataclasses

    values = dict(A1111_FLAG_DEFAULTS)
    if dataclasses.is_dataclass(flags):
        values.update({f.name: getattr(flags, f.name) for f in dataclasses.fields(flags)})
    else:
        values.update(vars(flags))
    extra = values.pop("extension_flags", None) or {}
    values.update(extra)
    values.setdefault("port", getattr(flags, "port", None))
    return argparse.Namespace(**values)
