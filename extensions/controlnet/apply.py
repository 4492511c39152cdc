"""Applying ControlNet units to a pipeline's UNet, whatever the pipeline class (txt2img, img2img, inpaint,
hires fix): a forward pre-hook on `pipe.unet` runs each active unit's ControlNet on the UNet's own inputs
(sample, timestep, encoder_hidden_states, SDXL added_cond_kwargs) and hands the summed residuals to the UNet
as `down_block_additional_residuals` / `mid_block_additional_residual`, as diffusers' ControlNet pipelines do.

Per call the control map is fitted to the sample's size (x8), cached per size, so hires fix gets a
full-size control. Guidance start/end use diffusers' rule on the pass's step index (kept from the on_step
hook; a new pass shows as the timestep going up). Control modes as sd-webui-controlnet describes them:
"My prompt is more important" scales the residuals by 0.825**(n-1-i) over the n residuals (soft injection);
"ControlNet is more important" also leaves the unconditional half of the CFG batch without control, so the
CFG scale amplifies the ControlNet's effect.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from .control_image import fit, to_tensor
from .units import ControlUnit

SOFT_BASE = 0.825


@dataclass
class ActiveUnit:
    """One unit ready to run: its ControlNet and its (preprocessed) control map."""

    index: int
    unit: ControlUnit
    controlnet: Any  # ControlNetModel
    detected: Image.Image  # the preprocessed map, before fitting to a size
    _tensors: dict[tuple[int, int, int, str, str], Any] = field(default_factory=dict)
    # diffusers' ModelMixin.dtype walks every submodule (milliseconds per read): read once, not per call.
    dtype: Any = None
    device: Any = None

    def __post_init__(self) -> None:
        param = next(self.controlnet.parameters())
        self.dtype, self.device = param.dtype, param.device

    def on(self, device) -> Any:
        """The ControlNet on `device` (moved once when the UNet runs elsewhere, e.g. with offloading)."""
        if self.device != device:
            self.controlnet.to(device)
            self.device = device
        return self.controlnet

    def control(self, width: int, height: int, batch: int, device, dtype):
        """The control tensor at width x height for a batch of `batch`, cached per size and batch."""
        key = (width, height, batch, str(device), str(dtype))
        tensor = self._tensors.get(key)
        if tensor is None:
            image = fit(self.detected, width, height, self.unit.resize_mode)
            tensor = to_tensor(image, device=device, dtype=dtype).repeat(batch, 1, 1, 1)
            self._tensors[key] = tensor
        return tensor


@dataclass
class StepTracker:
    """Where the running pass is: step index and the pass's steps (from on_step), pass number."""

    steps_hint: int
    index: int = 0
    total: int = 0
    pass_index: int = -1
    last_timestep: float | None = None

    def observe(self, timestep: float) -> None:
        """Called on each UNet call; a timestep above the last one starts a new pass."""
        if self.last_timestep is None or timestep > self.last_timestep:
            self.pass_index += 1
            self.index, self.total = 0, 0
        self.last_timestep = timestep

    def step_done(self, index: int, total: int) -> None:
        self.index, self.total = index + 1, total

    def keep(self, unit: ControlUnit) -> bool:
        """diffusers' controlnet_keep: on while i/n >= start and (i+1)/n <= end."""
        total = self.total or self.steps_hint
        i = self.index
        return not (i / total < unit.guidance_start or (i + 1) / total > unit.guidance_end)


@dataclass
class ControlRun:
    """The units of one job and how the UNet's batch is laid out (CFG halves)."""

    units: list[ActiveUnit]
    tracker: StepTracker
    cfg: bool  # the batch is [uncond, cond] (classifier-free guidance on)
    scale_factor: int = 8  # image pixels per latent pixel (the pipeline's vae_scale_factor)
    calls: int = 0

    def residuals(self, sample, timestep, kwargs: dict[str, Any]):
        """(down residuals, mid residual) summed over the units that are on at this step, or None."""
        import torch

        self.tracker.observe(float(timestep.flatten()[0]) if torch.is_tensor(timestep) else float(timestep))
        down_sum, mid_sum = None, None
        height, width = sample.shape[-2] * self.scale_factor, sample.shape[-1] * self.scale_factor
        for active in self.units:
            unit = active.unit
            if unit.weight == 0 or not self.tracker.keep(unit) \
                    or not _hr_allows(unit, self.tracker.pass_index):
                continue
            controlnet = active.on(sample.device)
            x = sample[:, :controlnet.config.in_channels]  # an inpainting UNet's extra channels are not its
            cond_only = (self.cfg and unit.control_mode == "ControlNet is more important"
                         and x.shape[0] % 2 == 0)
            rows = slice(x.shape[0] // 2, None) if cond_only else slice(None)
            added = kwargs.get("added_cond_kwargs")
            if cond_only and added:
                added = {k: v[rows] for k, v in added.items()}
            batched = torch.is_tensor(timestep) and timestep.ndim and timestep.shape[0] > 1
            t = timestep[rows] if batched else timestep
            dtype = active.dtype
            image = active.control(width, height, x[rows].shape[0], x.device, dtype)
            down, mid = controlnet(
                x[rows].to(dtype), t, encoder_hidden_states=kwargs["encoder_hidden_states"][rows].to(dtype),
                controlnet_cond=image, conditioning_scale=unit.weight, added_cond_kwargs=added,
                return_dict=False)
            if unit.control_mode != "Balanced":
                n = len(down) + 1
                down = [d * SOFT_BASE ** float(n - 1 - i) for i, d in enumerate(down)]
            if cond_only:  # the unconditional half gets no control
                down = [torch.cat([torch.zeros_like(d), d]) for d in down]
                mid = torch.cat([torch.zeros_like(mid), mid])
            down_sum = list(down) if down_sum is None else [a + b for a, b in zip(down_sum, down)]
            mid_sum = mid if mid_sum is None else mid_sum + mid
        self.calls += 1
        if down_sum is None:
            return None
        dtype = sample.dtype
        return [d.to(dtype) for d in down_sum], mid_sum.to(dtype)


def _hr_allows(unit: ControlUnit, pass_index: int) -> bool:
    option = (unit.hr_option or "Both").lower()
    if option.startswith("low"):
        return pass_index == 0
    if option.startswith("high"):
        return pass_index >= 1
    return True


@contextlib.contextmanager
def unet_controlled(unet, run: ControlRun) -> Iterator[ControlRun]:
    """A forward pre-hook on `unet` adding the run's residuals; removed on exit (the UNet is as before)."""

    def pre_hook(module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        out = run.residuals(sample, timestep, kwargs)
        if out is None:
            return None
        down, mid = out
        kwargs = dict(kwargs)
        if kwargs.get("down_block_additional_residuals") is not None:  # another controller already there
            down = [a + b for a, b in zip(kwargs["down_block_additional_residuals"], down)]
            mid = kwargs["mid_block_additional_residual"] + mid
        kwargs["down_block_additional_residuals"] = down
        kwargs["mid_block_additional_residual"] = mid
        return args, kwargs

    handle = unet.register_forward_pre_hook(pre_hook, with_kwargs=True)
    try:
        yield run
    finally:
        handle.remove()
