"""The loaded checkpoint: load, switch (freeing the old one), an optional RAM cache, derived pipelines.

Only the job worker calls `load`/`pipeline_for` while generating, but the API and UI may ask for the
current model at any time, so state changes happen under one lock.

A switch never holds two models: the old one is freed (or parked in the RAM cache, on the CPU) before the
new one loads, so peak memory is one model, not two. A load that fails brings the previous model back
(from the cache when it is there, else from disk), so one bad file never leaves the server without a
model. A safetensors file whose header is unreadable or of an unknown architecture is refused before
anything is freed, which saves that reload for the most common bad file.
"""
from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from modules.devices import MemoryPolicy, ModelFamily
from modules.jobs.failure import detach_traceback, safe_str
from modules.pipelines.memory import apply_memory_policy, torch_dtype

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A loaded pipeline with the checkpoint it came from and how it was placed."""

    checkpoint: Any  # registry.CheckpointInfo
    pipe: Any
    family: ModelFamily
    architecture: str
    policy: MemoryPolicy
    config_dir: Path | None = None  # the config folder it was loaded with (None: chosen automatically)

    @property
    def is_sdxl(self) -> bool:
        return self.family == "sdxl"


def model_family(pipe) -> ModelFamily:
    """'sdxl' for SDXL-style pipelines (two text encoders), else 'sd1' (SD 1.x and 2.x)."""
    return "sdxl" if getattr(pipe, "text_encoder_2", None) is not None else "sd1"


class PipelineManager:
    """Owns the current pipeline; `load` frees the previous one unless the RAM cache keeps it."""

    def __init__(self, policy_for: Callable[[ModelFamily], MemoryPolicy], cache_size: int = 0,
                 loader: Callable[..., tuple[Any, Any]] | None = None,
                 vae_for: Callable[[Any], Path | None] | None = None,
                 precheck: Callable[[Path], None] | None = None):
        self._policy_for = policy_for
        self._vae_for = vae_for
        self.vae_warning: str | None = None
        self._cache_size = max(0, int(cache_size))
        self._cache: OrderedDict[str, LoadedModel] = OrderedDict()
        self._current: LoadedModel | None = None
        self._derived: dict[str, Any] = {}
        self._unloaded: tuple[Any, Path | None] | None = None  # what unload() let go, until a model loads
        self._lock = threading.RLock()
        # `precheck(path)` raises for a file that cannot load, before the current model is let go. Our
        # loader's rules come with it; another loader (tests, extensions) brings its own check or none.
        if loader is None:
            from modules.pipelines.loading import load_pipeline as loader

            precheck = precheck or check_header
        self._precheck = precheck
        self._loader = loader

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def load_unloaded(self) -> LoadedModel | None:
        """Load again the checkpoint that unload() let go (A1111 does at the next job); None if there is none."""
        with self._lock:
            if self._current is not None or self._unloaded is None:
                return self._current
            log.info("Loading checkpoint %s again (it was unloaded)", Path(self._unloaded[0].path).name)
            return self.load(*self._unloaded)

    def set_cache_size(self, n: int) -> None:
        with self._lock:
            self._cache_size = max(0, int(n))
            if self._trim_cache():
                free_memory()

    def load(self, checkpoint, config_dir: Path | None = None) -> LoadedModel:
        """Make `checkpoint` (a registry CheckpointInfo) current; raises CheckpointError on a bad file.

        On failure the previous model is current again (when it can be brought back) and the error is raised.
        """
        with self._lock:
            key = str(checkpoint.path)
            if self._current is not None and str(self._current.checkpoint.path) == key:
                return self._current
            if self._precheck is not None and key not in self._cache:
                self._precheck(Path(checkpoint.path))  # a bad header: nothing freed, nothing to bring back
            # Taken out first: parking the current model in a full cache could evict it.
            model = self._cache.pop(key, None)
            # 1. Let go of the current model first (freed, or parked on the CPU in the cache).
            previous = self._current
            self._current, self._derived = None, {}
            back = (previous.checkpoint, previous.config_dir) if previous is not None else None
            self._retire(previous)
            del previous  # this frame must not keep it alive while the next one loads
            # 2. The new one, from the cache or from disk.
            try:
                if model is not None:
                    _unpark(model)
                else:
                    model = self._load_fresh(checkpoint, config_dir)
            except BaseException as exc:
                model = None
                # 3. It failed: the previous model comes back, so the server keeps working.
                self._bring_back(back, exc)
                raise
            self._current, self._unloaded = model, None
            return model

    def reload(self) -> LoadedModel | None:
        """Load the current checkpoint again from disk (after the VAE choice changed, for instance)."""
        with self._lock:
            if self._current is None:
                return None
            checkpoint = self._current.checkpoint
            self._cache.pop(str(checkpoint.path), None)
            self._current, self._derived = None, {}
            free_memory()
            self._current = self._load_fresh(checkpoint, None)
            return self._current

    def after_failure(self) -> None:
        """After a failed job: put the pipelines back at rest (offload hooks) and free unreferenced memory."""
        with self._lock:
            pipes = [self._current.pipe] if self._current is not None else []
            pipes += list(self._derived.values())
        for pipe in pipes:
            _release_offload_hooks(pipe)
        free_memory()

    def unload(self) -> None:
        """Free the current model (A1111 unload-checkpoint); the cache is dropped too."""
        with self._lock:
            previous, self._current, self._derived = self._current, None, {}
            if previous is not None:
                self._unloaded = (previous.checkpoint, previous.config_dir)
            self._cache.clear()
            del previous
            free_memory()

    def pipeline_for(self, task: str):
        """The current pipeline for 'txt2img', 'img2img' or 'inpaint', sharing weights via from_pipe."""
        with self._lock:
            if self._current is None:
                raise RuntimeError("no checkpoint is loaded")
            base = self._current.pipe
            if task == "txt2img" or task == getattr(base, "_webui_task", "txt2img"):
                return base
            if task not in self._derived:
                from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

                factory = AutoPipelineForInpainting if task == "inpaint" else AutoPipelineForImage2Image
                self._derived[task] = factory.from_pipe(base)
            return self._derived[task]

    # ---- internals -------------------------------------------------------------
    def _load_fresh(self, checkpoint, config_dir: Path | None) -> LoadedModel:
        pipe, info = self._loader(checkpoint.path, config_dir=config_dir, dtype=torch_dtype("float32"))
        self._apply_vae_choice(pipe, checkpoint)
        family = model_family(pipe)
        policy = self._policy_for(family)
        apply_memory_policy(pipe, policy)
        pipe.set_progress_bar_config(disable=True)
        architecture = getattr(info, "architecture", family)
        log.info("Loaded %s (%s) on %s", checkpoint.title, architecture, policy.label)
        return LoadedModel(checkpoint, pipe, family, architecture, policy, config_dir)

    def _bring_back(self, back: tuple[Any, Path | None] | None, failure: BaseException) -> None:
        """Make the model that was current before a failed load current again (cache first, then disk)."""
        # The failed load's frames may hold a half-built pipeline: free them before loading again.
        detail = detach_traceback(failure)
        log.debug("Failed load:\n%s", detail)
        free_memory()
        if back is None:
            return
        checkpoint, config_dir = back
        log.warning("Loading failed (%s); bringing back %s", safe_str(failure), checkpoint.title)
        try:
            model = self._cache.pop(str(checkpoint.path), None)
            if model is not None:
                _unpark(model)
            else:
                model = self._load_fresh(checkpoint, config_dir)
        except Exception as exc:  # noqa: BLE001 - the first error is the one to report
            detach_traceback(exc)
            log.error("Could not bring back %s either: %s", checkpoint.title, safe_str(exc))
            free_memory()
            return
        self._current = model

    def _apply_vae_choice(self, pipe, checkpoint) -> None:
        """Swap in the chosen VAE file; a VAE that does not fit keeps the checkpoint's own, with a warning."""
        self.vae_warning = None
        vae_path = self._vae_for(checkpoint) if self._vae_for is not None else None
        if vae_path is None:
            return
        from modules.pipelines.loading import CheckpointError, load_vae

        try:
            pipe.vae = load_vae(vae_path, like=pipe)
            log.info("Using VAE %s", Path(vae_path).name)
        except CheckpointError as exc:
            self.vae_warning = f"{exc}; using the checkpoint's own VAE"
            log.warning(self.vae_warning)

    def _retire(self, model: LoadedModel | None) -> None:
        """Park `model` in the RAM cache (on the CPU, as the setting promises) or let it go; free memory."""
        if model is None:
            return
        if self._cache_size > 0:
            moved = _park_on_cpu(model)
            self._cache[str(model.checkpoint.path)] = model
            if not self._trim_cache():
                # Nothing was let go, so there is nothing for a full collection to find (it cost 2.2 s per
                # switch with SD 1.5-size models in RAM): a cached switch only swaps references. Weights
                # that left the GPU leave CUDA's cache too.
                if moved:
                    release_cuda_cache()
                return
        del model
        free_memory()

    def _trim_cache(self) -> bool:
        """Drop the oldest cached models beyond the cache size; True when any was dropped."""
        dropped = False
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
            dropped = True
        return dropped


def _park_on_cpu(model: LoadedModel) -> bool:
    """Move a model that is about to wait in the cache off the GPU; True when weights moved."""
    if model.policy.offload != "none":
        _release_offload_hooks(model.pipe)  # at rest, offload hooks keep every part on the CPU
        return True
    if model.policy.device != "cpu":
        model.pipe.to("cpu")
        return True
    return False  # a CPU model already waits where the cache keeps it: no copy


def _unpark(model: LoadedModel) -> None:
    """A model taken back from the cache goes where its policy puts it (offloaded ones stay on the CPU)."""
    if model.policy.offload == "none" and model.policy.device != "cpu":
        model.pipe.to(model.policy.device)


def _release_offload_hooks(pipe) -> None:
    free = getattr(pipe, "maybe_free_model_hooks", None)
    if free is None:
        return
    try:
        free()
    except Exception as exc:  # noqa: BLE001 - best effort: a pipeline in a broken state must not stop us
        log.warning("Could not release offload hooks of %s: %s", type(pipe).__name__, safe_str(exc))


def check_header(path: Path) -> None:
    """Refuse a safetensors file whose header is unreadable or of an unknown architecture (reads no weights).

    Folders and pickles are left to the loader (their check would read the weights).
    """
    from modules.pipelines.loading import (
        SAFETENSORS_SUFFIXES,
        CheckpointError,
        detect_architecture,
        read_key_shapes,
    )

    if path.is_dir() or path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        return
    if not path.exists():
        raise CheckpointError(f"{path.name}: file not found ({path})")
    detect_architecture(read_key_shapes(path), path.name)


def free_memory() -> None:
    """Collect garbage and release cached CUDA blocks so a switched-out model really leaves."""
    gc.collect()
    release_cuda_cache()


def release_cuda_cache() -> None:
    """Hand CUDA's cached blocks back to the driver (nothing to do without CUDA)."""
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # freeing memory is best effort
        pass
