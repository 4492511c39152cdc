"""The `<lora:...>` extra network: tags -> adapters active for one batch, cards for the browser, hashes.

`activate` runs once per batch (modules/generation/hook_calls.networks_active) around all of the batch's
passes (first pass, hires, img2img and inpaint share the base model's modules). Anything wrong with one
LoRA - unknown name, corrupt file, another architecture, a LyCORIS kind we do not apply - is a warning and
the image is generated without it.
"""
from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from modules.extensions.api import ExtraNetworkParams, NetworkCard, find_preview, read_user_metadata

from .convert import LoraFormatError, lora_arch, model_arch
from .engine import AdapterCache, Use
from .files import LoraFile, LoraLibrary

HASHES_LABEL = "Lora hashes"


@dataclass(frozen=True)
class LoraCall:
    """One tag: `<lora:NAME:TE:UNET>` / `<lora:NAME:MULT>` / `te=` `unet=` named."""

    name: str
    te: float
    unet: float


def parse_call(params: ExtraNetworkParams, default: float) -> LoraCall:
    """A tag's arguments as multipliers; ValueError naming the bad value."""
    if not params.positional or not params.positional[0].strip():
        raise ValueError("a LoRA tag needs a name: <lora:NAME:WEIGHT>")
    name = params.positional[0].strip()
    te = _number(params.named.get("te", params.positional[1] if len(params.positional) > 1 else default), name)
    unet = _number(params.named.get("unet", params.positional[2] if len(params.positional) > 2 else te), name)
    return LoraCall(name, te, unet)


def _number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"<lora:{name}:...>: weight {value!r} is not a number") from None


@dataclass
class Settings:
    """What the provider reads from the app's settings at each use (the user may change them any time)."""

    get: Callable[[str], Any]

    @property
    def default_multiplier(self) -> float:
        return float(self.get("extra_networks_default_multiplier"))

    @property
    def max_loaded(self) -> int:
        return int(self.get("lora_cache_size"))

    @property
    def fuse(self) -> bool:
        return bool(self.get("lora_fuse"))

    @property
    def prefer_alias(self) -> bool:
        return self.get("lora_preferred_name") != "Filename"

    @property
    def add_hashes(self) -> bool:
        return bool(self.get("lora_add_hashes_to_infotext"))


class LoraNetwork:
    """The provider registered as `lora` (alias `lyco`)."""

    title = "Lora"

    def __init__(self, library: LoraLibrary, settings: Settings):
        self.library = library
        self.settings = settings
        # One adapter cache per model, held by the UNet object: a switched-out model takes its cache along.
        self._caches: weakref.WeakKeyDictionary[torch.nn.Module, AdapterCache] = weakref.WeakKeyDictionary()

    def cache_for(self, pipe) -> AdapterCache:
        cache = self._caches.get(pipe.unet)
        if cache is None:
            cache = self._caches[pipe.unet] = AdapterCache.for_pipe(pipe)
        return cache

    # -- generation ---------------------------------------------------------------------------------
    def activate(self, pipe, calls: list[ExtraNetworkParams], info) -> contextlib.AbstractContextManager:
        cache = self.cache_for(pipe)
        uses: list[Use] = []
        hashes: dict[str, str] = {}
        for params in calls:
            use, tag_name, file = self._use(pipe, cache, params, info)
            if use is None:
                continue
            uses.append(use)
            if self.settings.add_hashes and file is not None:
                shorthash = self.library.shorthash(file)
                if shorthash:
                    hashes[tag_name] = shorthash
        if hashes and info is not None:
            info.params[HASHES_LABEL] = ", ".join(f"{name}: {h}" for name, h in hashes.items())
        cache.activate(uses, fuse=self.settings.fuse)
        return self._active(cache)

    @contextlib.contextmanager
    def _active(self, cache: AdapterCache) -> Iterator[None]:
        try:
            yield
        finally:
            cache.deactivate()

    def _use(self, pipe, cache: AdapterCache, params: ExtraNetworkParams, info) -> tuple[Use | None, str, LoraFile | None]:
        try:
            call = parse_call(params, self.settings.default_multiplier)
        except ValueError as exc:
            _warn(info, f"{exc}; skipped")
            return None, "", None
        file = self.library.find(call.name)
        if file is None:
            _warn(info, f"LoRA not found: {call.name}; skipped")
            return None, call.name, None
        try:
            adapter = cache.get(file.key, lambda: self._read_checked(file, pipe), self.settings.max_loaded)
        except LoraFormatError as exc:
            _warn(info, f"{call.name} {exc}; skipped")
            return None, call.name, None
        except Exception as exc:  # a corrupt file: the image is still made, without it
            _warn(info, f"{call.name}: cannot load {file.path.name} ({type(exc).__name__}: {exc}); skipped")
            return None, call.name, None
        return Use(adapter, call.te, call.unet), call.name, file

    def _read_checked(self, file: LoraFile, pipe) -> dict[str, torch.Tensor]:
        state_dict = read_state_dict(file.path)
        trained, loaded = lora_arch(state_dict), model_arch(pipe)
        if trained is not None and trained != loaded:
            raise LoraFormatError(f"is a LoRA for {trained}, the loaded model is {loaded}")
        return state_dict

    # -- browser and API ----------------------------------------------------------------------------
    def refresh(self) -> None:
        self.library.refresh()

    def display_name(self, file: LoraFile) -> str:
        return self.library.alias(file) if self.settings.prefer_alias else file.stem

    def cards(self) -> list[NetworkCard]:
        return [self.card(file) for file in self.library.files()]

    def card(self, file: LoraFile) -> NetworkCard:
        user = read_user_metadata(file.path)
        name = self.display_name(file)
        weight = user.get("preferred weight") or self.settings.default_multiplier
        prompt = f"<lora:{name}:{_weight_text(weight)}>"
        if str(user.get("activation text") or "").strip():
            prompt += " " + str(user["activation text"]).strip()
        preview = find_preview(file.path)
        known_hash = self.library.cached_shorthash(file)
        terms = tuple(t for t in (file.stem, file.folder, self.library.alias(file), known_hash) if t)
        return NetworkCard(
            name=name, prompt=prompt, path=str(file.path), preview=str(preview) if preview else None,
            description=str(user.get("description") or ""), search_terms=terms,
            sort_keys={"name": name.lower(), "path": str(file.path).lower(), "date_created": file.ctime,
                       "date_modified": file.mtime_ns / 1e9},
            metadata=self.library.metadata(file), user_metadata=user,
            negative_prompt=str(user.get("negative text") or ""))

    def api_list(self) -> list[dict[str, Any]]:
        """GET /sdapi/v1/loras, A1111's shape."""
        return [{"name": f.stem, "alias": self.library.alias(f), "path": str(f.path),
                 "metadata": self.library.metadata(f)} for f in self.library.files()]

    # -- infotext paste -----------------------------------------------------------------------------
    def restore_names(self, params: dict[str, Any]) -> None:
        """A pasted tag whose name is not here but whose `Lora hashes` entry matches a local file is renamed
        to that file's name (as A1111 does), in the prompt and in the hashes."""
        text = params.get(HASHES_LABEL)
        prompt = params.get("Prompt")
        if not isinstance(text, str) or not isinstance(prompt, str):
            return
        renames: dict[str, str] = {}
        for entry in text.split(","):
            name, _, shorthash = entry.strip().rpartition(":")
            name, shorthash = name.strip(), shorthash.strip()
            if not name or not shorthash or self.library.find(name) is not None:
                continue
            file = self.library.by_hash(shorthash)
            if file is not None:
                renames[name] = self.display_name(file)
        for old, new in renames.items():
            prompt = _rename_tags(prompt, old, new)
        if renames:
            params["Prompt"] = prompt
            params[HASHES_LABEL] = ", ".join(
                f"{renames.get(n.strip(), n.strip())}: {h.strip()}"
                for n, _, h in (e.strip().rpartition(":") for e in text.split(",")) if n)


def _rename_tags(prompt: str, old: str, new: str) -> str:
    import re

    pattern = re.compile(r"<(lora|lyco):" + re.escape(old) + r"(?=[:>])", re.IGNORECASE)
    return pattern.sub(lambda m: f"<{m.group(1)}:{new}", prompt)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a LoRA file (safetensors, or a weights-only torch pickle)."""
    import torch

    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    data = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ValueError("not a state dict")
    return {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}


def _weight_text(weight: Any) -> str:
    try:
        value = float(weight)
    except (TypeError, ValueError):
        return str(weight)
    return f"{value:g}"


def _warn(info, message: str) -> None:
    if info is not None and message not in info.warnings:
        info.warnings.append(message)
