"""LoRAs as PEFT adapters kept on the model's own modules: loaded once, re-weighted in milliseconds.

One `AdapterCache` per model object (its UNet): a model switch is a new UNet, so a fresh cache, and the
old one goes with the old model. An adapter is keyed by file (path, mtime, size): an edited file is a new
adapter. Between batches every adapter layer is disabled, so the model computes exactly its base output
(PEFT's disabled layer calls only the base layer); `max_loaded` adapters stay, least recently used first out.
"""
from __future__ import annotations

import threading
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .convert import COMPONENTS, LoraFormatError, LoraWeights, module_index, resolve

FileKey = tuple[str, int, int]  # (path, mtime_ns, size)


@dataclass
class Adapter:
    name: str  # the PEFT adapter name on every module
    key: FileKey
    weights_components: tuple[str, ...]
    load_seconds: float = 0.0


@dataclass
class Use:
    """One LoRA of a batch: its adapter and the multipliers for text encoders and UNet."""

    adapter: Adapter
    te: float
    unet: float


@dataclass
class AdapterCache:
    """The adapters loaded on one model, in LRU order, and the wrapped layers per component."""

    # Weak: the provider's per-model map holds this cache under the UNet as a weak key; a strong reference
    # here would keep every switched-out model alive.
    refs: dict[str, weakref.ref]
    adapters: OrderedDict[FileKey, Adapter] = field(default_factory=OrderedDict)
    layers: dict[str, list] = field(default_factory=dict)  # component -> PEFT tuner layers
    indexes: dict[str, dict[str, str]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    counter: int = 0
    loads: int = 0  # files turned into adapters (a cache hit does not count): tests and the bench read it
    enabled: list = field(default_factory=list)  # layers switched on for the running batch

    @classmethod
    def for_pipe(cls, pipe) -> AdapterCache:
        return cls({c: weakref.ref(getattr(pipe, c)) for c in COMPONENTS if getattr(pipe, c, None) is not None})

    @property
    def modules(self) -> dict[str, torch.nn.Module]:
        alive = {c: ref() for c, ref in self.refs.items()}
        return {c: m for c, m in alive.items() if m is not None}

    # -- loading --------------------------------------------------------------------------------------
    def get(self, key: FileKey, read: Callable[[], dict[str, torch.Tensor]], max_loaded: int) -> Adapter:
        """The adapter of file `key`, loading it with `read()` on a miss; raises LoraFormatError for a file
        that does not fit the model (nothing is injected then)."""
        with self.lock:
            if key in self.adapters:
                self.adapters.move_to_end(key)
                return self.adapters[key]
            started = time.perf_counter()
            if _offloaded(self.modules.get("unet")):
                # sequential CPU offload keeps weights on the meta device: PEFT would put the LoRA there too
                raise LoraFormatError("cannot be applied while the model uses sequential CPU offload (--lowvram)")
            weights = resolve(read(), self._indexes(), self.modules)
            self.counter += 1
            adapter = Adapter(f"lora_{self.counter}", key, tuple(weights.components()))
            try:
                self._inject(adapter.name, weights)
            except Exception:
                self._remove(adapter.name)  # nothing half-loaded stays on the model
                raise
            adapter.load_seconds = time.perf_counter() - started
            self.loads += 1
            self.adapters[key] = adapter
            while len(self.adapters) > max(1, max_loaded):
                _, old = self.adapters.popitem(last=False)
                self._remove(old.name)
            return adapter

    def _indexes(self) -> dict[str, dict[str, str]]:
        if not self.indexes:
            self.indexes = {c: module_index(c, m) for c, m in self.modules.items()}
        return self.indexes

    def _inject(self, adapter: str, weights: LoraWeights) -> None:
        from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict
        from peft.tuners.tuners_utils import BaseTunerLayer

        for component, layers in weights.layers.items():
            module = self.modules[component]
            ranks = {name: pair.rank for name, pair in layers.items()}
            rank = max(ranks.values())
            # alpha == r for every layer (the file's alpha is baked into `up`), so scaling == multiplier.
            pattern = {re_exact(n): r for n, r in ranks.items() if r != rank}
            config = LoraConfig(r=rank, lora_alpha=rank, target_modules=sorted(layers), rank_pattern=pattern,
                                alpha_pattern=dict(pattern), lora_dropout=0.0, init_lora_weights=False)
            state = {}
            for name, pair in layers.items():
                state[f"{name}.lora_A.weight"] = pair.down
                state[f"{name}.lora_B.weight"] = pair.up
            with warnings.catch_warnings():  # "multiple adapters in the model": that is the point here
                warnings.filterwarnings("ignore", message=".*peft_config.*")
                inject_adapter_in_model(config, module, adapter_name=adapter, low_cpu_mem_usage=True)
            result = set_peft_model_state_dict(module, state, adapter_name=adapter, low_cpu_mem_usage=True)
            missing = [k for k in getattr(result, "unexpected_keys", []) if adapter in k or "lora_" in k]
            if missing:
                raise RuntimeError(f"PEFT did not take {len(missing)} LoRA tensors (first: {missing[0]})")
            self.layers[component] = [m for m in module.modules() if isinstance(m, BaseTunerLayer)]
            for layer in self.layers[component]:
                layer.enable_adapters(False)
                for part in (layer.lora_A, layer.lora_B):
                    part.requires_grad_(False)

    def _remove(self, adapter: str) -> None:
        """Drop one adapter; a layer left without adapters goes back to the plain module."""
        for component, module in self.modules.items():
            for name, child in list(module.named_modules()):
                if child in self.layers.get(component, ()) and adapter in getattr(child, "lora_A", {}):
                    child.delete_adapter(adapter)
                    if not child.lora_A:
                        parent_name, _, attr = name.rpartition(".")
                        parent = module.get_submodule(parent_name) if parent_name else module
                        setattr(parent, attr, child.get_base_layer())
            from peft.tuners.tuners_utils import BaseTunerLayer

            self.layers[component] = [m for m in module.modules() if isinstance(m, BaseTunerLayer)]

    # -- one batch -----------------------------------------------------------------------------------
    # PEFT's enable_adapters/set_adapter also walk every parameter to toggle requires_grad (training);
    # here that is 90% of a weight change, so the layer state is set directly: the active adapter names,
    # the disabled flag and the scale (lora params stay requires_grad=False from injection on).
    def activate(self, uses: list[Use], fuse: bool = False) -> None:
        """Enable exactly `uses` with their multipliers (te for text encoders, unet for the UNet)."""
        with self.lock:
            self.deactivate()
            for component, layers in self.layers.items():
                mult = {u.adapter.name: (u.unet if component == "unet" else u.te) for u in uses
                        if component in u.adapter.weights_components}
                active = [n for n, m in mult.items() if m != 0.0]
                if not active:
                    continue
                for layer in layers:
                    names = [n for n in active if n in layer.lora_A]
                    if not names:
                        continue
                    for n in names:
                        layer.set_scale(n, mult[n])
                    layer._active_adapter = names
                    layer._disable_adapters = False
                    self.enabled.append(layer)
                    if fuse:
                        layer.merge(adapter_names=names)

    def deactivate(self) -> None:
        """Every enabled layer back to its base output (fused ones are unmerged first)."""
        with self.lock:
            for layer in self.enabled:
                if layer.merged:
                    layer.unmerge()
                layer._disable_adapters = True
            self.enabled = []

    def clear(self) -> None:
        """Drop every adapter: the model's modules are the plain ones again (as diffusers' unload)."""
        with self.lock:
            self.deactivate()
            while self.adapters:
                _, adapter = self.adapters.popitem(last=False)
                self._remove(adapter.name)

    def loaded(self) -> list[FileKey]:
        with self.lock:
            return list(self.adapters)


def _offloaded(unet) -> bool:
    if unet is None:
        return False
    conv = getattr(unet, "conv_in", None)
    weight = getattr(getattr(conv, "base_layer", conv), "weight", None)
    return weight is not None and weight.device.type == "meta"


def re_exact(name: str) -> str:
    """A PEFT rank_pattern key matching exactly this module name (its keys are regular expressions)."""
    import re

    return re.escape(name)
