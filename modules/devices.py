"""What hardware we have (`DeviceInfo`) and how to use it (`MemoryPolicy`).

`choose_policy` is a pure function so that it can be tested with fake cards; `detect_device` is the
only place that asks torch about the hardware.

Cards are classed by their nominal size (the GB on the box), not the total CUDA reports: the driver keeps
some memory back, so a 12 GB card reports ~11.7 GiB, 8 GB 7.6-7.8, 6 GB 5.6-5.8, 4 GB ~3.8.
`nominal_vram_gib` rounds a reported total up to the card size it belongs to (within 8%).

Thresholds (nominal VRAM; fp16 weights plus working memory at the model's native size with SDP attention):
- SD 1.x/2.x weigh ~2.0 GiB in fp16 (UNet 1.6, text encoder 0.23, VAE 0.16); a 512x512 pass needs
  ~1.5-2 GiB more. Cards under 3 GB hold nothing -> lowvram (sequential offload, layer by layer);
  3-5 GB cards (4 GB the common one) are tight for weights + activations -> medvram (model offload:
  one component on the GPU at a time); 6 GB cards and up hold everything.
- SDXL weighs ~6.5 GiB in fp16 (UNet 4.8, two text encoders 1.5, VAE 0.16) and a 1024x1024 pass
  needs ~3-4 GiB more. Under 6 GB even the UNet alone barely fits -> lowvram; 6-11 GB cards
  (the common 8 GB one) -> medvram; 12 GB cards and up hold everything (VAE slicing keeps decode small).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

GiB = 1024**3

DeviceKind = Literal["cuda", "mps", "cpu"]
ModelFamily = Literal["sd1", "sdxl"]
Offload = Literal["none", "model", "sequential"]

# (lowvram below, medvram below) in nominal GB of VRAM, per model family. See the module docstring.
VRAM_THRESHOLDS_GIB: dict[str, tuple[float, float]] = {"sd1": (3.0, 6.0), "sdxl": (6.0, 12.0)}

# Sizes cards are sold with (vendors' "GB" here are GiB of memory chips).
NOMINAL_VRAM_GIB = (2, 3, 4, 5, 6, 8, 10, 11, 12, 16, 20, 24, 32, 40, 48, 80)
# Drivers (and ECC) keep back up to ~5.5% of that (6 GB laptop cards report 5.67 GiB); 8% leaves room
# without rounding an unusual total (a 9 GiB VM or MIG slice) up to the next card size.
NOMINAL_MARGIN = 0.08


def nominal_vram_gib(total_bytes: int) -> float:
    """The card size (GiB) a reported CUDA total belongs to; the reported GiB when no size is within 8%."""
    reported = total_bytes / GiB
    for size in NOMINAL_VRAM_GIB:
        if size >= reported:
            return float(size) if reported >= size * (1 - NOMINAL_MARGIN) else reported
    return reported


@dataclass(frozen=True)
class DeviceInfo:
    """The accelerator as detected: kind, name, VRAM in bytes (0 for CPU/MPS), and what torch can do."""

    kind: DeviceKind = "cpu"
    name: str = "CPU"
    index: int = 0
    total_vram: int = 0
    free_vram: int = 0
    supports_fp16: bool = True
    xformers_available: bool = False
    # An NVIDIA driver is present but torch cannot use CUDA (a CPU-only torch build, or a broken driver).
    gpu_visible_but_unusable: bool = False
    supports_bf16: bool = False  # CUDA compute capability 8.0+ (the "bfloat16" precision setting)

    @property
    def torch_device(self) -> str:
        return f"cuda:{self.index}" if self.kind == "cuda" else self.kind

    @property
    def nominal_vram_gib(self) -> float:
        """The card's size class in GiB (a 12 GB card reporting 11.7 GiB gives 12.0)."""
        return nominal_vram_gib(self.total_vram)

    def vram_text(self) -> str:
        """'11.8 GiB VRAM (12 GB card)': what CUDA reports and the class the policy uses."""
        text = f"{self.total_vram / GiB:.1f} GiB VRAM"
        nominal = self.nominal_vram_gib
        return text + (f" ({nominal:g} GB card)" if nominal == round(nominal) else "")

    def describe(self) -> str:
        if self.kind == "cuda":
            return f"{self.name} (cuda:{self.index}), {self.vram_text()}, {self.free_vram / GiB:.1f} GiB free"
        return self.name


@dataclass(frozen=True)
class DeviceFlags:
    """The subset of command-line flags that shape the memory policy."""

    use_cpu: tuple[str, ...] = ()
    medvram: bool = False
    medvram_sdxl: bool = False
    lowvram: bool = False
    xformers: bool = False
    opt_sdp_attention: bool = False
    no_half: bool = False
    no_half_vae: bool = False
    precision: str = "autocast"

    @classmethod
    def from_flags(cls, flags) -> "DeviceFlags":
        return cls(**{name: getattr(flags, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class MemoryPolicy:
    """How to place and run one model family: device, dtypes, offload mode, attention, VAE tricks."""

    device: str = "cpu"
    dtype: str = "float32"
    vae_dtype: str = "float32"
    offload: Offload = "none"
    attention: Literal["sdp", "xformers"] = "sdp"
    attention_slicing: bool = False
    vae_slicing: bool = False
    vae_tiling: bool = False
    channels_last: bool = False
    cpu_tasks: tuple[str, ...] = ()
    # torch.compile of the UNet: the mode ("" = off) and backend (modules/performance/compile.py).
    compile_mode: str = ""
    compile_backend: str = "inductor"
    vae_tiling_above: int = 0  # an image side (pixels) above which decodes are tiled anyway (0 = never)
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def label(self) -> str:
        mode = {"none": "all on device", "model": "medvram (model offload)",
                "sequential": "lowvram (sequential offload)"}[self.offload]
        text = f"{self.device} {self.dtype} (VAE {self.vae_dtype}), {mode}, attention {self.attention}"
        named = (("channels-last", self.channels_last), ("VAE slicing", self.vae_slicing),
                 ("VAE tiling", self.vae_tiling))
        tricks = [name for name, on in named if on]
        if self.compile_mode:
            tricks.append(f"torch.compile {self.compile_mode}")
        return text + "".join(f", {trick}" for trick in tricks)

    def summary(self) -> str:
        """One log line: the policy and why."""
        text = self.label
        if self.reasons:
            text += " -- " + "; ".join(self.reasons)
        return text


def choose_policy(device: DeviceInfo, flags: DeviceFlags, family: ModelFamily = "sd1") -> MemoryPolicy:
    """Pick device, dtype, offload and attention for a model family; flags override the automatic choice."""
    reasons: list[str] = []
    warnings: list[str] = []
    cpu_tasks = tuple(sorted(set(flags.use_cpu)))
    on_cpu = device.kind == "cpu" or "all" in cpu_tasks or "sd" in cpu_tasks

    # 1. Device.
    if device.kind == "cpu":
        reasons.append("no GPU found: CPU in float32")
    elif on_cpu:
        reasons.append(f"--use-cpu {' '.join(cpu_tasks)}: CPU in float32")
    target = "cpu" if on_cpu else device.torch_device

    # 2. Precision. CPUs run float16 slowly or not at all, so CPU is always float32.
    if on_cpu:
        dtype = "float32"
    elif flags.no_half or flags.precision == "full":
        dtype = "float32"
        reasons.append("--no-half/--precision full: float32")
    elif not device.supports_fp16 and flags.precision != "half":
        dtype = "float32"
        reasons.append(f"{device.name} handles float16 badly: float32")
    else:
        dtype = "float16"
    vae_dtype = dtype
    if flags.no_half_vae and dtype != "float32":
        vae_dtype = "float32"
        reasons.append("--no-half-vae: VAE in float32")

    # 3. Offload: explicit flags win, then VRAM thresholds (CUDA only; MPS shares system memory).
    offload: Offload = "none"
    if not on_cpu and device.kind == "cuda":
        low_below, med_below = VRAM_THRESHOLDS_GIB[family]
        # The card's class, not the reported total: a 12 GB card reports ~11.7 GiB (module docstring).
        vram_gib = device.nominal_vram_gib
        vram = device.vram_text()
        if flags.lowvram:
            offload = "sequential"
            reasons.append("--lowvram")
        elif flags.medvram or (flags.medvram_sdxl and family == "sdxl"):
            offload = "model"
            reasons.append("--medvram" if flags.medvram else "--medvram-sdxl on an SDXL model")
        elif vram_gib < low_below:
            offload = "sequential"
            reasons.append(f"{vram} < {low_below:g} GB for {family}: lowvram")
        elif vram_gib < med_below:
            offload = "model"
            reasons.append(f"{vram} < {med_below:g} GB for {family}: medvram")
        else:
            reasons.append(f"{vram} >= {med_below:g} GB for {family}: everything on the GPU")
    elif not on_cpu and device.kind == "mps":
        reasons.append("Apple MPS: unified memory, attention slicing on")
    if (on_cpu or device.kind != "cuda") and (flags.lowvram or flags.medvram or flags.medvram_sdxl):
        warnings.append("--lowvram/--medvram only apply to CUDA devices; ignored")

    # 4. Attention: xformers only when it can actually run; otherwise PyTorch SDP.
    attention = "sdp"
    if flags.xformers:
        if device.kind == "cuda" and not on_cpu and device.xformers_available:
            attention = "xformers"
            reasons.append("--xformers")
        else:
            why = "not importable" if device.kind == "cuda" and not on_cpu else "needs CUDA"
            warnings.append(f"--xformers requested but xformers {why}: using PyTorch SDP attention instead")

    # 5. Memory savers that cost little speed where memory is tight.
    tight = offload != "none"
    return MemoryPolicy(
        device=target,
        dtype=dtype,
        vae_dtype=vae_dtype,
        offload=offload,
        attention=attention,
        attention_slicing=device.kind == "mps" and not on_cpu,
        vae_slicing=tight or (family == "sdxl" and not on_cpu),
        vae_tiling=offload == "sequential",
        channels_last=device.kind == "cuda" and not on_cpu,
        cpu_tasks=cpu_tasks,
        reasons=tuple(reasons),
        warnings=tuple(warnings),
    )


def nvidia_driver_present() -> bool:
    """An NVIDIA driver on this machine (a file check, no torch): only then can CUDA be expected to work."""
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


class DeviceProbe:
    """The DeviceInfo, detected on first use, once, from any thread.

    Detecting imports torch (seconds of CPU). On a machine without an NVIDIA driver nothing at start-up
    needs the answer, so the server answers its first page first and the model-loading job asks.
    `on_detected` runs once with the answer (start-up logs the device and the memory policies there).
    """

    def __init__(self, detect: Callable[[], DeviceInfo],
                 on_detected: Callable[[DeviceInfo], None] | None = None) -> None:
        self._detect, self._on_detected = detect, on_detected
        self._lock = threading.Lock()
        self._info: DeviceInfo | None = None

    @property
    def detected(self) -> bool:
        return self._info is not None

    def get(self) -> DeviceInfo:
        info = self._info
        if info is not None:
            return info
        with self._lock:
            if self._info is None:
                found = self._detect()
                if self._on_detected is not None:
                    self._on_detected(found)
                self._info = found
            return self._info


def detect_device(device_id: int | None = None) -> DeviceInfo:
    """Ask torch what accelerator is usable: CUDA (name, total/free VRAM), then MPS, else CPU."""
    import torch

    if torch.cuda.is_available():
        index = device_id if device_id is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        try:
            free, total = torch.cuda.mem_get_info(index)
        except RuntimeError:
            free, total = props.total_memory, props.total_memory
        try:
            import xformers.ops  # noqa: F401

            has_xformers = True
        except Exception:
            has_xformers = False
        # GTX 16xx cards produce NaNs/black images in float16 (known A1111 report): use float32.
        fp16_ok = not ("GTX 16" in props.name or props.major < 6)
        return DeviceInfo("cuda", props.name, index, int(total), int(free), fp16_ok, has_xformers,
                          supports_bf16=props.major >= 8)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return DeviceInfo("mps", "Apple MPS")
    return DeviceInfo("cpu", "CPU", gpu_visible_but_unusable=nvidia_driver_present())


def execution_device(pipe) -> torch.device:
    """The device inputs must go to (offloaded pipelines report their GPU here).

    diffusers' `_execution_device` walks every submodule of every component looking for offload hooks, ~5 ms
    on SD 1.5, and a job asks 4-5 times (noise, VAE, ...). The answer is kept on the pipeline beside a key
    read in microseconds: each component's top-level offload hook and the device of its first parameter.
    Moving the pipeline or adding offload hooks changes that key; apply_memory_policy forgets the answer."""
    key = _placement_key(pipe)
    cached = getattr(pipe, _KEPT, None)
    if cached is not None and cached[0] == key:
        return cached[1]
    device = getattr(pipe, "_execution_device", None) or pipe.device
    try:
        setattr(pipe, _KEPT, (key, device))
    except AttributeError:  # a pipeline-like object that takes no attributes: ask each time
        pass
    return device


def forget_execution_device(pipe) -> None:
    """Drop the kept answer (the pipeline is being placed anew: offload onto another device keeps the key)."""
    try:
        setattr(pipe, _KEPT, None)
    except AttributeError:
        pass


_KEPT = "_webui_execution_device"


def _placement_key(pipe) -> tuple:
    import torch

    key = []
    for name, module in (getattr(pipe, "components", None) or {}).items():
        if isinstance(module, torch.nn.Module):
            first = next(module.parameters(), None)
            key.append((name, id(module), id(getattr(module, "_hf_hook", None)),
                        None if first is None else first.device))
    return tuple(key)
