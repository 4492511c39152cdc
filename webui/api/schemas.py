"""Request and response models of the A1111 API, written out by hand with A1111's names and defaults.

API defaults are A1111's API defaults (steps 50, sampler "Euler" via sampler_index, ...), which differ
from the UI's on purpose: existing clients rely on them. Unknown fields are ignored, as A1111 does.
"""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class Txt2ImgRequest(_Lenient):
    prompt: str = ""
    negative_prompt: str = ""
    styles: list[str] = Field(default_factory=list)
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = 0.0
    seed_resize_from_h: int = -1
    seed_resize_from_w: int = -1
    sampler_name: Optional[str] = None
    scheduler: Optional[str] = None
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 50
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    restore_faces: Optional[bool] = None
    tiling: Optional[bool] = None
    do_not_save_samples: bool = False
    do_not_save_grid: bool = False
    eta: Optional[float] = None
    denoising_strength: Optional[float] = None
    s_min_uncond: Optional[float] = None
    s_churn: Optional[float] = None
    s_tmax: Optional[float] = None
    s_tmin: Optional[float] = None
    s_noise: Optional[float] = None
    override_settings: Optional[dict[str, Any]] = None
    override_settings_restore_afterwards: bool = True
    refiner_checkpoint: Optional[str] = None
    refiner_switch_at: Optional[float] = None
    disable_extra_networks: bool = False
    comments: Optional[dict[str, Any]] = None
    enable_hr: bool = False
    firstphase_width: int = 0
    firstphase_height: int = 0
    hr_scale: float = 2.0
    hr_upscaler: Optional[str] = None
    hr_second_pass_steps: int = 0
    hr_resize_x: int = 0
    hr_resize_y: int = 0
    hr_checkpoint_name: Optional[str] = None
    hr_sampler_name: Optional[str] = None
    hr_scheduler: Optional[str] = None
    hr_prompt: str = ""
    hr_negative_prompt: str = ""
    force_task_id: Optional[str] = None
    sampler_index: str = "Euler"
    script_name: Optional[str] = None
    script_args: list[Any] = Field(default_factory=list)
    send_images: bool = True
    save_images: bool = False
    alwayson_scripts: dict[str, Any] = Field(default_factory=dict)
    infotext: Optional[str] = None


class ImageResponse(BaseModel):
    images: list[str] = Field(default_factory=list, description="base64 PNGs, no data: prefix")
    parameters: dict[str, Any]
    info: str = Field(description="a JSON string (A1111 quirk) with infotexts, all_seeds, ...")


class SDModelItem(BaseModel):
    title: str
    model_name: str
    hash: Optional[str] = None
    sha256: Optional[str] = None
    filename: str
    config: Optional[str] = None


class ErrorResponse(BaseModel):
    error: str
    detail: str = ""
    body: str = ""
    errors: str = ""
