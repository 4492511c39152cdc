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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from .convert import COMPONENTS, LoraFormatError, LoraWeights, module_index, resolve

FileKey = tuple[str, int, int]  # (path, mtime_ns, size)


@dataclass
class Adapter:
    name: str  # the PEFT adapter name on every module
    key: FileKey
    weights_components: tuple[str, ...]
    load_seconds: float = 0.0
    modules: list[tuple[str, str]] = field(default_factory=list)  # (component, module name) it was put on


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
    layers: dict[str, dict[str, object]] = field(default_factory=dict)  # component -> name -> PEFT LoRA layer
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
                self._inject(adapter, weights)
            except Exception:
                self._remove(adapter)  # nothing half-loaded stays on the model
                raise
            adapter.load_seconds = time.perf_counter() - started
            self.loads += 1
            self.adapters[key] = adapter
            while len(self.adapters) > max(1, max_loaded):
                _, old = self.adapters.popitem(last=False)
                self._remove(old)
            return adapter

    def _indexes(self) -> dict[str, dict[str, str]]:
        if not self.indexes:
            self.indexes = {c: module_index(c, m) for c, m in self.modules.items()}
        return self.indexes

    # The PEFT LoRA layers are built here directly instead of by inject_adapter_in_model +
    # set_peft_model_state_dict: those walk the whole model per target, build each lora_A/lora_B with a
    # kaiming init that the load then overwrites, remap and copy the state dict, and toggle requires_grad on
    # every parameter - 2/3 of a cold load. Here the layers are made on the meta device (no allocation, no
    # init) and given the file's tensors as their parameters (no copy when dtype and device already match).
    def _inject(self, adapter: Adapter, weights: LoraWeights) -> None:
        import torch
        from peft import LoraConfig
        from peft.tuners.lora.layer import Conv2d as LoraConv2d
        from peft.tuners.lora.layer import Linear as LoraLinear
        from peft.tuners.lora.layer import LoraLayer

        config = LoraConfig(r=1, lora_alpha=1, lora_dropout=0.0, init_lora_weights=False, inference_mode=True)
        for component, layers in weights.layers.items():
            root = self.modules[component]
            wrapped = self.layers.setdefault(component, {})
            for name, pair in layers.items():
                module = root.get_submodule(name)
                # scaling = lora_alpha / r = the file's scale; activate() multiplies in the tag's weight
                alpha = pair.scale * pair.rank
                with torch.device("meta"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # PEFT's notes on meta/unmergeable layers: not ours
                    if isinstance(module, LoraLayer):
                        module.update_layer(adapter.name, pair.rank, lora_alpha=alpha, config=config)
                        layer = module
                    else:
                        kind = LoraLinear if isinstance(module, torch.nn.Linear) else LoraConv2d
                        layer = kind(module, adapter.name, config=config, r=pair.rank, lora_alpha=alpha)
                        parent_name, _, attr = name.rpartition(".")
                        setattr(root.get_submodule(parent_name) if parent_name else root, attr, layer)
                        layer._disable_adapters = True  # off until a batch activates it
                adapter.modules.append((component, name))
                wrapped[name] = layer
                base = layer.get_base_layer().weight
                for part, tensor in ((layer.lora_A, pair.down), (layer.lora_B, pair.up)):
                    part[adapter.name].weight = torch.nn.Parameter(
                        tensor.to(device=base.device, dtype=base.dtype), requires_grad=False)

    def _remove(self, adapter: Adapter) -> None:
        """Drop one adapter; a layer left without adapters goes back to the plain module."""
        for component, name in adapter.modules:
            layer = self.layers.get(component, {}).get(name)
            root = self.modules.get(component)
            if layer is None or root is None:
                continue
            if adapter.name in layer.lora_A:
                with warnings.catch_warnings():  # "adapter was active, now deleted": all are off here
                    warnings.simplefilter("ignore")
                    layer.delete_adapter(adapter.name)
            if not layer.lora_A:
                parent_name, _, attr = name.rpartition(".")
                parent = root.get_submodule(parent_name) if parent_name else root
                setattr(parent, attr, layer.get_base_layer())
                del self.layers[component][name]
        adapter.modules = []

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
                for layer in layers.values():
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
                self._remove(adapter)

    def loaded(self) -> list[FileKey]:
        with self.lock:
            return list(self.adapters)


def _offloaded(unet) -> bool:
    if unet is None:
        return False
    conv = getattr(unet, "conv_in", None)
    weight = getattr(getattr(conv, "base_layer", conv), "weight", None)
    return weight is not None and weight.device.type == "meta"

