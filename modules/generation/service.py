"""The two entry points the UI and the API call: `submit_generation` (queue a job) and `run_generation`
(the job itself: model for the request, per-job settings, txt2img/img2img/inpaint, saving).

`ctx` is the AppContext, taken duck-typed (settings, paths, checkpoints, pipelines, jobs): generation sits
below modules.context in the import order and never imports it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from modules.extensions.hooks import GenerationInfo, SaveInfo
from modules.generation.info import model_identity
from modules.generation.job_vae import job_vae, vae_path_for
from modules.generation.runtime import GenerationEnv
from modules.images.outputs import OutputDirs
from modules.images.saving import SaveOptions, make_grid, save_generation
from modules.jobs.failure import detach_traceback, safe_str
from modules.pipelines.hashes import cached_sha256
from modules.types import GenerationRequest, GenerationResult, UserInputError

log = logging.getLogger(__name__)

# Settings that name a model: A1111 clients put the checkpoint into override_settings.
_MODEL_KEYS = ("sd_model_checkpoint",)


class JobSettings:
    """The settings store seen through one job's override_settings; the store itself never changes.

    A1111 clients send keys we do not have (their extensions' settings, ENSD, ...): those are listed in
    `ignored` and reported as a warning, not an error. A known key with a bad value is the user's to fix.
    """

    def __init__(self, base, overrides: dict[str, Any] | None = None):
        self._base = base
        self._overrides: dict[str, Any] = {}
        self.ignored: list[str] = []
        known = {spec.key for spec in base.specs()}
        for key, value in (overrides or {}).items():
            if key in _MODEL_KEYS:
                continue  # handled as the job's model
            if key not in known:
                self.ignored.append(key)
                continue
            try:
                self._overrides[key] = base.coerce(key, value)
            except ValueError as exc:  # SettingsError: a value of the wrong type or not among the choices
                raise UserInputError(str(exc), field="override_settings") from None

    def get(self, key: str) -> Any:
        """The override for this job, else the stored value."""
        if key in self._overrides:
            return self._overrides[key]
        return self._base.get(key)

    def as_dict(self) -> dict[str, Any]:
        return {**self._base.as_dict(), **self._overrides}

    @property
    def overrides(self) -> dict[str, Any]:
        """The known, coerced overrides of this job (the model key excluded)."""
        return dict(self._overrides)


def submit_generation(ctx, request: GenerationRequest):
    """Queue `request` on ctx.jobs; returns the Job (wait_result() gives the GenerationResult)."""
    kind = "txt2img" if request.mode == "txt2img" else "img2img"
    description = f"{kind}: {request.prompt[:60]}" if request.prompt else kind
    return ctx.jobs.submit(kind, lambda job_ctx: run_generation(ctx, request, job_ctx),
                           description=description)


def _upscalers(ctx, request: GenerationRequest):
    """The app's upscaler registry when hires fix asks for a model upscaler (built on first use); None for
    latent and resampler modes, so a plain generation never loads an upscaler backend."""
    from modules.generation.hires import LATENT_UPSCALERS, PIXEL_UPSCALERS

    if not request.enable_hr or request.hr_upscaler in LATENT_UPSCALERS or request.hr_upscaler in PIXEL_UPSCALERS:
        return None
    from modules.postprocessing import registry_for

    return registry_for(ctx)


def run_generation(ctx, request: GenerationRequest, job_ctx=None) -> GenerationResult:
    """Run one generation job on the worker: model, settings for this job, generate, save."""
    # 1. Settings for this job only: override_settings are layered over the store, never written to it.
    settings = JobSettings(ctx.settings, request.override_settings)
    env = GenerationEnv(settings=settings, pipelines=ctx.pipelines, checkpoints=ctx.checkpoints,
                        styles=getattr(ctx, "styles", None), embeddings=getattr(ctx, "embeddings", None),
                        upscalers=_upscalers(ctx, request))

    # 2. Extensions see the request first (before_generation may change it, even its model).
    hooks = _hooks(ctx)
    info = GenerationInfo(request=request, job=job_ctx)
    env.hooks, env.info = hooks, info
    if hooks is not None:
        request = hooks.run_filter("before_generation", request, info, required=info.requested)
        info.request = request

    # 3. The model: the one the request names, for this job only (A1111's restore-afterwards default).
    #    Only the checkpoint to go back to is kept: holding its LoadedModel would keep that model in memory
    #    while the job's own model loads and runs.
    back = _current_checkpoint(ctx)
    model = model_for(ctx, request)
    switched = back is not None and str(model.checkpoint.path) != str(back.path)
    if getattr(model.checkpoint, "hash", True) is None and hasattr(ctx.checkpoints, "ensure_hash"):
        # Infotext names the model by hash as A1111 does: hashed once per file, then cached by the registry.
        model.checkpoint = ctx.checkpoints.ensure_hash(model.checkpoint)
    if not request.override_settings_restore_afterwards:
        # A1111's restore_afterwards=false: the overrides, the job's model and its VAE stay after the job.
        result = _generate_and_save(ctx, request, job_ctx, env, settings, model)
        _keep_overrides(ctx, settings, model if switched else None)
        return result
    if not switched:
        return _generate_and_save(ctx, request, job_ctx, env, settings, model)
    try:
        result = _generate_and_save(ctx, request, job_ctx, env, settings, model)
    except BaseException as exc:
        # The traceback's frames hold the job's model (and its activations after an OOM): free them, or
        # the way back would load beside them. The text stays on the exception for the log.
        _note(exc, f"Traceback before {back.title} was loaded back:\n{detach_traceback(exc)}")
        del model
        info.model = None
        _load_back(ctx, back)
        raise
    del model
    info.model = None  # the extensions' view of the job is done: it must not keep the model either
    warning = _load_back(ctx, back)
    if warning:
        result.warnings.append(warning)
    return result


def _generate_and_save(ctx, request: GenerationRequest, job_ctx, env, settings, model) -> GenerationResult:
    # The job's own VAE (override_settings' sd_vae) around generating and saving.
    warnings: list[str] = []
    loaded, wanted = _vae_paths(ctx, settings, model)
    with job_vae(model.pipe, loaded, wanted, keep=not request.override_settings_restore_afterwards,
                 warnings=warnings) as wanted_is_used:
        # A1111 names a separate VAE file in every infotext ("VAE hash", "VAE"; none for the checkpoint's
        # own): the one that makes the picture, so a refused override is not named (a paste would ask again).
        choice = settings.get("sd_vae") if wanted_is_used else ctx.settings.get("sd_vae")
        env.info.params.update(_vae_params(ctx, choice, model))
        result = _generate_and_save_with(ctx, request, job_ctx, env, settings, model)
    result.warnings += warnings
    return result


def _vae_paths(ctx, settings, model) -> tuple[Any, Any]:
    """(VAE file the model has now, VAE file this job wants); equal when the job names no other VAE."""
    stored, wanted = ctx.settings.get("sd_vae"), settings.get("sd_vae")
    paths = getattr(ctx, "paths", None)
    if stored == wanted or paths is None:
        return None, None
    where = (model.checkpoint.path, paths.vae_dir, getattr(paths, "ckpt_dirs", ()))
    return vae_path_for(stored, *where), vae_path_for(wanted, *where)


def _vae_params(ctx, choice: str, model) -> dict[str, str]:
    """{"VAE hash": first 10 hex digits of the file's sha256 (A1111's), "VAE": its file name} for the VAE
    file the "SD VAE" `choice` picks; {} when it is the checkpoint's own VAE."""
    paths = getattr(ctx, "paths", None)
    if paths is None:
        return {}
    path = vae_path_for(choice, model.checkpoint.path, paths.vae_dir,
                        getattr(paths, "ckpt_dirs", ()))
    if path is None:
        return {}
    name = Path(path).name
    # Hashed once per file and mtime (the registry's cache, shared with A1111's cache.json layout).
    cache = getattr(getattr(ctx, "checkpoints", None), "cache", None)
    try:
        sha256 = cached_sha256(path, f"vae/{name}", cache)
    except OSError as exc:
        log.warning("could not hash VAE %s: %s", path, exc)
        return {"VAE": name}
    return {"VAE hash": sha256[:10], "VAE": name}


def _keep_overrides(ctx, settings, switched_model) -> None:
    """restore_afterwards=false: the job's overrides become the settings (in memory, as A1111's opts.set)."""
    changes = settings.overrides
    if switched_model is not None and hasattr(ctx.checkpoints, "title_of"):
        changes["sd_model_checkpoint"] = ctx.checkpoints.title_of(switched_model.checkpoint)
    if changes:
        ctx.settings.update(changes, save=False)


def _generate_and_save_with(ctx, request: GenerationRequest, job_ctx, env, settings, model
                            ) -> GenerationResult:
    # 4. Generate: through the extensions' pipeline patches and job wrappers (A1111's Script.run), when any.
    info, hooks = env.info, env.hooks
    info.model = model

    def run(req: GenerationRequest) -> GenerationResult:
        # Imported here, on the worker: the generation code pulls in diffusers, which start-up must not
        # import (the server answers before the model libraries load; submit_generation needs none of it).
        from modules.generation.img2img import generate_img2img
        from modules.generation.txt2img import generate_txt2img

        info.request = req
        generate = generate_txt2img if req.mode == "txt2img" else generate_img2img
        return generate(model, req, progress=job_ctx, env=env)

    if hooks is None:
        result = run(request)
    else:
        with hooks.patched("patch_pipeline", model.pipe, request, info, required=info.requested):
            result = hooks.run_wrapped(request, info, run)
        hooks.run("after_generation", result, info, required=info.requested)
    result.warnings += [w for w in info.warnings if w not in result.warnings]
    if settings.ignored:
        result.warnings.append(f"override_settings: ignored unknown settings {', '.join(settings.ignored)}")
    # 5. Grid and files.
    save_result(ctx, request, result, settings, model, hooks=hooks, info=info)
    return result


def _hooks(ctx):
    system = getattr(ctx, "extensions", None)
    return getattr(system, "hooks", None)


def _current_checkpoint(ctx):
    current = ctx.pipelines.current
    return current.checkpoint if current is not None else None


def _load_back(ctx, checkpoint) -> str | None:
    """Make `checkpoint` current again after a job on another model; a warning when that fails."""
    try:
        ctx.pipelines.load(checkpoint)
    except Exception as exc:  # noqa: BLE001 - the job's own result or error is what the caller gets
        detach_traceback(exc)
        warning = f"could not load {checkpoint.title} back after this job: {safe_str(exc)}"
        log.error(warning)
        return warning
    return None


def _note(exc: BaseException, text: str) -> None:
    add_note = getattr(exc, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(text)
    else:
        log.error("%s", text)


def model_for(ctx, request: GenerationRequest):
    """The LoadedModel for the request: request.sd_model_checkpoint or override_settings' checkpoint."""
    query = request.sd_model_checkpoint or str(request.override_settings.get("sd_model_checkpoint") or "")
    current = ctx.pipelines.current
    if query:
        info = ctx.checkpoints.find(query)
        if info is None:
            raise UserInputError(f"no checkpoint matches {query!r}", field="sd_model_checkpoint")
        if current is None or str(current.checkpoint.path) != str(info.path):
            del current  # not kept alive by this frame while the other one loads
            log.info("Loading checkpoint %s for one job", query)
            return ctx.pipelines.load(info)
        return current
    if current is None:
        # After unload-checkpoint A1111 loads the model again for the next job; clients rely on that.
        current = ctx.pipelines.load_unloaded()
    if current is None:
        # Say why (e.g. which file failed to load at start-up), not just that nothing is loaded.
        reason = getattr(ctx, "model_error", None)
        raise UserInputError(f"no checkpoint is loaded ({reason})" if reason else
                             "no checkpoint is loaded; pick one in the checkpoint list",
                             field="sd_model_checkpoint")
    return current


def save_result(ctx, request: GenerationRequest, result: GenerationResult, settings, model, *, hooks=None,
                info=None) -> None:
    """Make the grid (several images, unless a script made one) and save images/grid when the request and
    settings ask for it; extensions' before_save/after_save hooks see each file."""
    if result.grid is None and len(result.images) > 1 and not request.do_not_save_grid \
            and not result.extra.get("no_grid"):  # an A1111 script's p.do_not_save_grid
        result.grid = make_grid(result.images, batch_size=request.batch_size)
    save_images = request.save_images and settings.get("samples_save") and bool(result.images)
    save_grid = request.save_images and settings.get("grid_save") and result.grid is not None
    if not (save_images or save_grid):
        return
    name, shorthash = model_identity(model)
    kept = result if save_images else GenerationResult(grid=result.grid, infotexts=result.infotexts[:1],
                                                       all_seeds=result.all_seeds[:1], extra=result.extra)
    values = settings.as_dict()  # the job's override_settings included
    options = SaveOptions.from_settings(values)
    before, after = _save_hooks(hooks, info)
    folders = OutputDirs.from_settings(values, ctx.paths.data_dir)  # outdir_* settings
    paths = save_generation(kept, request, folders, options, model_name=name, model_hash=shorthash,
                            save_grid=bool(save_grid), before_save=before, after_save=after)
    result.saved_paths = [str(p) for p in paths]


def _save_hooks(hooks, info):
    """(before_save, after_save) callables for save_generation, or (None, None) without such hooks."""
    if hooks is None or not (hooks.has("before_save") or hooks.has("after_save")):
        return None, None
    required = info.requested if info is not None else set()

    def before(image, infotext: str):
        save = SaveInfo(image, infotext)
        hooks.run("before_save", save, info, required=required)
        return save.image, save.infotext

    def after(path) -> None:
        hooks.run("after_save", path, info, required=required)

    return before, after
