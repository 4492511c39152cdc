"""AppContext: the one object that holds the running app's parts, passed explicitly to whoever needs it.

`build_context` is the start-up sequence: folders, settings, device and policy, checkpoints (with the
first-start download or demo fallback), pipeline manager and job queue. Problems a user can fix stop
start-up with one line (`StartupError`); a bad checkpoint does not stop it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modules.devices import (DeviceFlags, DeviceInfo, DeviceProbe, MemoryPolicy, ModelFamily, choose_policy,
                             detect_device, nvidia_driver_present)
from modules.flags import Flags
from modules.paths import Paths
from modules.performance.options import LOAD_SETTINGS as PERFORMANCE_LOAD_SETTINGS
from modules.performance.options import PerformanceOptions, adjust_policy
from modules.settings import Settings

log = logging.getLogger("webui")


class StartupError(RuntimeError):
    """A problem that prevents start-up; the message is printed as one line."""


@dataclass
class AppContext:
    """The running app: configuration, hardware, models and the job queue."""

    flags: Flags
    paths: Paths
    device_probe: DeviceProbe  # `device` detects on first use: importing torch would delay the first page
    settings: Settings
    checkpoints: Any  # modules.pipelines.registry.CheckpointRegistry
    pipelines: Any  # modules.pipelines.manager.PipelineManager
    jobs: Any  # modules.jobs.queue.JobQueue
    styles: Any = None  # modules.prompts.styles.StyleDatabase
    embeddings: Any = None  # modules.prompts.embeddings.EmbeddingDatabase (textual inversion)
    extensions: Any = None  # modules.extensions.system.ExtensionSystem (loaded extensions, hooks, adapter)
    notices: list[str] = field(default_factory=list)
    model_error: str | None = None
    # Set by the server: ends it so the launcher starts the app again (Extensions' "Apply and restart").
    restart_handler: Any = None

    def request_restart(self) -> bool:
        """Ask the server to restart the app; False when this process cannot restart itself."""
        if self.restart_handler is None:
            return False
        self.restart_handler()
        return True

    @property
    def device(self) -> DeviceInfo:
        return self.device_probe.get()

    def policy_for(self, family: ModelFamily) -> MemoryPolicy:
        return family_policy(self.device, self.flags, self.settings, family)

    @property
    def demo_active(self) -> bool:
        return self.demo_kind is not None

    @property
    def demo_kind(self) -> str | None:
        """The loaded demo checkpoint's kind ("demo-shapes", "demo-tiny-sd15"), None for a real model."""
        from modules.pipelines.demo import demo_kind

        current = self.pipelines.current
        return demo_kind(Path(current.checkpoint.path)) if current is not None else None

    def default_image_size(self) -> int:
        """The UI's default width and height: the trained demo model's native size when it is the model the
        start loads (the server builds the page before the model is in memory), else A1111's 512."""
        from modules.pipelines.demo import native_size

        first = initial_candidates(self)
        return (native_size(first[0].path) if first else None) or 512

    def close(self) -> None:
        self.jobs.shutdown()


def build_context(flags: Flags, project_root: Path, *, a1111_modules: dict[str, Any] | None = None) -> AppContext:
    """Run the start-up sequence and return the context; raises StartupError with a one-line reason.
    `a1111_modules` (name -> factory(adapter)) adds the web layer's A1111 modules (gradio, ui_components)."""
    from modules.jobs.queue import JobQueue
    from modules.pipelines.manager import PipelineManager
    from modules.pipelines.registry import CheckpointRegistry

    # No diffusers/transformers here: the server answers first; the worker imports them when it loads the
    # first model (modules.pipelines.libraries, which also keeps diffusers' lazy imports on one thread).

    # 1. Folders. An unwritable data dir is the user's to fix: say which one.
    paths = Paths.from_dirs(
        flags.resolved_data_dir(project_root), flags.models_dir, flags.ckpt_dir, flags.ckpt,
        flags.vae_dir, flags.lora_dir, flags.controlnet_dir, flags.embeddings_dir,
    )
    try:
        paths.ensure_writable()
    except PermissionError as exc:
        raise StartupError(f"data dir is not usable: {exc}") from None
    for ckpt in paths.ckpt_files:
        if not ckpt.exists():
            raise StartupError(f"--ckpt {ckpt}: file not found")

    # 2. Settings (a corrupt config.json is moved aside, not fatal).
    settings = Settings(paths.config_file)
    notices = [settings.load_warning] if settings.load_warning else []

    # 3. Device and the memory policy for each model family, logged with the reasons when first asked
    # for (it imports torch): by the first model load, right after the server answers. With an NVIDIA
    # driver present, now: a GPU that torch cannot use stops the start with the fix.
    def log_device(device: DeviceInfo) -> None:
        log.info("Device: %s", device.describe())
        for family in ("sd1", "sdxl"):
            policy = family_policy(device, flags, settings, family)
            log.info("Memory policy for %s: %s", family, policy.summary())
            for warning in policy.warnings:
                log.warning(warning)

    probe = DeviceProbe(lambda: detect_device(flags.device_id), on_detected=log_device)
    if nvidia_driver_present() and probe.get().gpu_visible_but_unusable and not flags.skip_torch_cuda_test:
        raise StartupError(
            "an NVIDIA GPU is present but torch cannot use it (CPU-only torch build or driver problem); "
            "install a CUDA torch via TORCH_COMMAND, or pass --skip-torch-cuda-test to run on the CPU"
        )

    # 4. Checkpoints: on a first start with none, download SD 1.5 or fall back to the demo model.
    checkpoints = CheckpointRegistry(paths)
    if not checkpoints.list():
        notices += first_start_checkpoint(paths, flags)
        checkpoints.refresh()

    ctx = AppContext(
        flags=flags, paths=paths, device_probe=probe, settings=settings, checkpoints=checkpoints,
        pipelines=None, notices=notices,
        jobs=JobQueue(preview_every_n_steps=live_preview_steps(settings),
                      after_failure=lambda job: after_job_failure(ctx)),
    )
    from modules.prompts.styles import StyleDatabase

    from modules.prompts.embeddings import EmbeddingDatabase

    ctx.embeddings = EmbeddingDatabase(paths.embeddings_dir)
    ctx.styles = StyleDatabase(paths.styles_file)
    if ctx.styles.load_warning:
        ctx.notices.append(ctx.styles.load_warning)
    ctx.jobs.preview_decoder = preview_decoders(paths, settings)
    ctx.pipelines = PipelineManager(ctx.policy_for, cache_size=settings.get("sd_checkpoint_cache"),
                                    vae_for=lambda checkpoint: vae_for_checkpoint(ctx, checkpoint))
    settings.on_change(lambda key, value: _apply_setting(ctx, key))

    # 5. Extensions (their failures are reported in the Extensions tab and the log, never fatal).
    ctx.extensions = load_extension_system(ctx, a1111_modules or {})
    return ctx


def family_policy(device: DeviceInfo, flags: Flags, settings: Settings, family: ModelFamily) -> MemoryPolicy:
    """The memory policy for a model family: hardware and flags, then the Optimizations settings."""
    dflags = DeviceFlags.from_flags(flags)
    options = PerformanceOptions.from_settings(settings.get)
    return adjust_policy(choose_policy(device, dflags, family), options, device, dflags)


def load_extension_system(ctx: AppContext, a1111_modules: dict[str, Any]):
    """Native and A1111-style extensions; the A1111 adapter is wired in here, the core never imports it."""
    from modules.a1111.app import A1111Compat
    from modules.extensions.system import load_extensions

    def adapter(ctx, registry):
        compat = A1111Compat(ctx, registry)
        for name, factory in a1111_modules.items():
            compat.imports.provide(name, lambda factory=factory: factory(compat))
        return compat

    return load_extensions(ctx, app_version=app_version(), a1111_factory=adapter)


def app_version() -> str:
    """The project's version from pyproject.toml (the extension manifests' min_app_version)."""
    import re

    try:
        text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return "0.0.0"
    found = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return found.group(1) if found else "0.0.0"


def after_job_failure(ctx: AppContext) -> None:
    """A failed job (a CUDA OOM, say) may leave offload hooks mid-way and memory cached: reset and free."""
    if ctx.pipelines is not None:
        ctx.pipelines.after_failure()


def live_preview_steps(settings: Settings) -> int:
    """Steps between live previews (0 = off), from A1111's two preview settings."""
    if not settings.get("live_previews_enable"):
        return 0
    return max(0, int(settings.get("show_progress_every_n_steps")))


def preview_decoders(paths: Paths, settings: Settings):
    """The live-preview method of `show_progress_type` (TAESD from models/VAE-approx, loaded on first use)."""
    from modules.jobs.taesd import PreviewDecoders

    return PreviewDecoders(paths.models_dir / "VAE-approx", settings.get("show_progress_type"))


def _apply_setting(ctx: AppContext, key: str) -> None:
    """Settings that act on running parts take effect at once (the next job reads them)."""
    if key in ("live_previews_enable", "show_progress_every_n_steps"):
        ctx.jobs.preview_every_n_steps = live_preview_steps(ctx.settings)
    elif key == "show_progress_type":
        ctx.jobs.preview_decoder = preview_decoders(ctx.paths, ctx.settings)
    elif key == "sd_vae" and ctx.pipelines.current is not None:
        # Through the queue: the VAE changes between jobs, never under a running one.
        ctx.jobs.submit("load-model", lambda job_ctx: ctx.pipelines.reload(), description="apply VAE")
    elif key in PERFORMANCE_LOAD_SETTINGS and ctx.pipelines.current is not None:
        # dtype, compile, channels-last, VAE tricks act when a model is placed: load it again (from disk, as
        # a float16 -> float32 cast back would not restore the weights).
        ctx.jobs.submit("load-model", lambda job_ctx: reload_for_new_policy(ctx),
                        description="apply optimizations")
    elif key == "sd_checkpoint_cache":
        ctx.pipelines.set_cache_size(ctx.settings.get("sd_checkpoint_cache"))


def reload_for_new_policy(ctx: AppContext) -> bool:
    """Load the current model again when the settings now give it another policy; True when it did.
    (Several settings applied at once queue one call each: only the first finds a change.)"""
    current = ctx.pipelines.current
    if current is None or ctx.policy_for(current.family) == current.policy:
        return False
    ctx.pipelines.reload()
    return True


def first_start_checkpoint(paths: Paths, flags: Flags) -> list[str]:
    """Download the default model, or write the demo checkpoint when that is impossible; returns notices."""
    from modules.pipelines.default_model import download_default_model
    from modules.pipelines.demo import demo_kind, install_demo_checkpoint

    target = paths.ckpt_dirs[0]
    if not flags.no_download_sd_model and download_default_model(target) is not None:
        return []
    demo = install_demo_checkpoint(target)
    log.info("Using the built-in demo checkpoint %s", demo.name)
    return [demo_notice(paths, demo_kind(demo))]


def demo_notice(paths: Paths, kind: str | None = None) -> str:
    from modules.pipelines.demo import demo_notice_text

    return demo_notice_text(kind, paths.ckpt_dirs[0])


def vae_for_checkpoint(ctx: AppContext, checkpoint) -> Path | None:
    """The VAE file for a checkpoint per the "SD VAE" setting: None means the checkpoint's own VAE.

    "Automatic" uses `<name>.vae.*` beside the checkpoint (or a same-named file in models/VAE), as A1111;
    "None" keeps the baked-in VAE; a file name picks that file (an unknown name falls back to Automatic).
    """
    from modules.pipelines.loading import find_auto_vae
    from modules.pipelines.registry import find_vae, list_vae_files

    choice = ctx.settings.get("sd_vae")
    if choice == "None":
        return None
    if choice != "Automatic":
        found = find_vae(list_vae_files(ctx.paths.vae_dir, ctx.paths.ckpt_dirs), choice)
        if found is not None:
            return found.path
        log.warning("SD VAE %r not found in %s; using Automatic", choice, ctx.paths.vae_dir)
    return find_auto_vae(checkpoint.path, ctx.paths.vae_dir)


def switch_model(ctx: AppContext, query: str):
    """Load the checkpoint named by title, name or hash, remember it in settings; raises on failure."""
    from modules.types import UserInputError

    info = ctx.checkpoints.find(query)
    if info is None:
        raise UserInputError(f"no checkpoint matches {query!r}", field="sd_model_checkpoint")
    loaded = ctx.pipelines.load(info)
    ctx.checkpoints.ensure_hash(info)  # A1111 hashes on first load; the title gains [hash10]
    ctx.model_error = None
    ctx.settings.update({"sd_model_checkpoint": ctx.checkpoints.title_of(info)})
    return loaded


def initial_candidates(ctx: AppContext) -> list:
    """Checkpoints in the order the start tries them: --ckpt, else the saved choice, else the list order."""
    candidates = list(ctx.checkpoints.list())
    wanted = None
    if ctx.paths.ckpt_files:
        wanted = ctx.checkpoints.find(str(ctx.paths.ckpt_files[0]))
    elif ctx.settings.get("sd_model_checkpoint"):
        wanted = ctx.checkpoints.find(ctx.settings.get("sd_model_checkpoint"))
    if wanted is not None:
        candidates.remove(wanted)
        candidates.insert(0, wanted)
    return candidates


def load_initial_model(ctx: AppContext) -> None:
    """Load --ckpt, else the saved choice, else the first checkpoint; a bad file is reported, not fatal.

    When the wanted file cannot be loaded, the next loadable checkpoint is used so the app still works,
    and `ctx.model_error` says which file is bad and why (the UI and API show it).
    """
    from modules.pipelines.libraries import import_model_libraries

    import_model_libraries()
    from modules.pipelines.loading import CheckpointError

    candidates = initial_candidates(ctx)
    errors = []
    for info in candidates:
        try:
            ctx.pipelines.load(info)
            ctx.checkpoints.ensure_hash(info)
        except (CheckpointError, OSError, ValueError, RuntimeError) as exc:
            errors.append(str(exc) if info.name in str(exc) else f"{info.name}: {exc}")
            log.error("Could not load checkpoint %s", errors[-1])
            continue
        # The saved choice is the user's: keep it even when today we had to fall back to another file.
        if not ctx.settings.get("sd_model_checkpoint"):
            ctx.settings.update({"sd_model_checkpoint": ctx.checkpoints.title_of(info)})
        break
    ctx.model_error = "; ".join(errors) or None
    if not candidates:
        ctx.model_error = f"no checkpoint found in {ctx.paths.ckpt_dirs[0]}"
