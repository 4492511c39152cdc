"""The loaded checkpoint: load, switch (freeing the old one), an optional RAM cache, derived pipelines.

Only the job worker calls `load`/`pipeline_for` while generating, but the API and UI may ask for the
current model at any time, so state changes happen under one lock.
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
                 vae_for: Callable[[Any], Path | None] | None = None):
        self._policy_for = policy_for
        self._vae_for = vae_for
        self.vae_warning: str | None = None
        self._cache_size = max(0, int(cache_size))
        self._cache: OrderedDict[str, LoadedModel] = OrderedDict()
        self._current: LoadedModel | None = None
        self._derived: dict[str, Any] = {}
        self._lock = threading.RLock()
        if loader is None:
            from modules.pipelines.loading import load_pipeline as loader
        self._loader = loader

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def set_cache_size(self, n: int) -> None:
        with self._lock:
            self._cache_size = max(0, int(n))
            self._trim_cache()

    def load(self, checkpoint, config_dir: Path | None = None) -> LoadedModel:
        """Make `checkpoint` (a registry CheckpointInfo) current; raises CheckpointError on a bad file."""
        with self._lock:
            key = str(checkpoint.path)
            if self._current is not None and str(self._current.checkpoint.path) == key:
                return self._current
            cached = self._cache.pop(key, None)
            previous, self._current, self._derived = self._current, None, {}
            self._retire(previous)
            if cached is None:
                cached = self._load_fresh(checkpoint, config_dir)
            self._current = cached
            return cached

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

    def unload(self) -> None:
        """Free the current model (A1111 unload-checkpoint); the cache is dropped too."""
        with self._lock:
            previous, self._current, self._derived = self._current, None, {}
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
        return LoadedModel(checkpoint, pipe, family, architecture, policy)

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
        if model is None:
            return
        if self._cache_size > 0:
            self._cache[str(model.checkpoint.path)] = model
            self._trim_cache()
        del model
        free_memory()

    def _trim_cache(self) -> None:
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def free_memory() -> None:
    """Collect garbage and release cached CUDA blocks so a switched-out model really leaves."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # freeing memory is best effort
        pass
