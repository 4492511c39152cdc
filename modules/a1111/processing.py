"""`modules.processing` for A1111 extensions: the `p` object, `Processed`, seeds and infotext helpers.

`p` is an adapter built from our GenerationRequest (`p_from_request`) and turned back into one
(`request_from_p`), so whatever a script writes into `p` (prompt, all_prompts, seeds, sizes,
extra_generation_params, ...) is what generates. `process_images(p)` itself belongs to the app's
adapter (modules/a1111/app.py), which runs it on our core.
"""
from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

from modules.types import GenerationRequest, GenerationResult

# GenerationRequest fields that p carries under the same name.
_REQUEST_FIELDS = tuple(f.name for f in dataclasses.fields(GenerationRequest)
                        if f.name not in ("mode", "extensions", "script_name", "script_args", "init_images",
                                          "styles", "override_settings", "all_prompts", "all_negative_prompts",
                                          "all_seeds", "all_subseeds"))
_DEFAULTS = GenerationRequest()


def get_fixed_seed(seed: Any) -> Any:
    """A concrete seed: -1, None and '' become a random one (A1111's range: below 2**32 - 1); a list of
    seeds (one per image, as some scripts set) is kept."""
    if isinstance(seed, (list, tuple)):
        return [get_fixed_seed(s) for s in seed]
    if seed is None or seed == "" or int(seed) == -1:
        return int(random.randrange(4294967294))
    return int(seed)


def fix_seed(p) -> None:
    p.seed = get_fixed_seed(p.seed)
    p.subseed = get_fixed_seed(p.subseed)


class StableDiffusionProcessing:
    """A1111's `p`. Any keyword is accepted (A1111 scripts pass their own), unknown ones kept as attributes."""

    def __init__(self, **kwargs: Any):
        for name in _REQUEST_FIELDS:
            setattr(self, name, getattr(_DEFAULTS, name))
        self.sd_model = None
        self.outpath_samples = ""
        self.outpath_grids = ""
        self.styles: list[str] = []
        self.override_settings: dict[str, Any] = {}
        self.override_settings_restore_afterwards = True
        self.do_not_save_samples = False
        self.do_not_save_grid = False
        self.restore_faces = False
        self.extra_generation_params: dict[str, Any] = {}
        self.overlay_images = None
        self.comments: dict[str, Any] = {}
        self.scripts = None
        self.script_args: list[Any] = []
        self.script_name = ""
        self.alwayson_script_args: dict[str, list[Any]] = {}
        self.extensions: dict[str, Any] = {}
        self.all_prompts: list[str] | None = None
        self.all_negative_prompts: list[str] | None = None
        self.all_seeds: list[int] | None = None
        self.all_subseeds: list[int] | None = None
        self.prompts: list[str] = []
        self.negative_prompts: list[str] = []
        self.seeds: list[int] = []
        self.subseeds: list[int] = []
        self.iteration = 0
        self.is_hr_pass = False
        self.disable_extra_networks = False
        self.seed_enable_extras = True
        self.sampler_index = None
        self.s_min_uncond = 0.0
        # None = the settings of the same names (A1111's dataclass defaults; the sampler reads the settings)
        self.s_churn = self.s_tmin = self.s_tmax = self.s_noise = None
        self.user = None
        self.init_images: list[Any] = []
        self.image_mask = None
        self.latent_mask = None
        self.all_hr_prompts: list[str] | None = None
        self.all_hr_negative_prompts: list[str] | None = None
        self.job_timestamp = ""
        for key, value in kwargs.items():
            setattr(self, key, value)
        if kwargs.get("styles") is None:
            self.styles = []

    # A1111 code reads these
    @property
    def main_prompt(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else (self.prompt[0] if self.prompt else "")

    @property
    def main_negative_prompt(self) -> str:
        neg = self.negative_prompt
        return neg if isinstance(neg, str) else (neg[0] if neg else "")

    @property
    def mask(self):
        return self.image_mask

    @mask.setter
    def mask(self, value) -> None:
        self.image_mask = value

    @property
    def mode(self) -> str:
        return "txt2img"

    def setup_prompts(self) -> None:
        """all_prompts / all_negative_prompts for every image (a list prompt gives one per image)."""
        total = max(1, int(self.batch_size)) * max(1, int(self.n_iter))
        if isinstance(self.prompt, list):
            self.all_prompts = list(self.prompt)
        else:
            self.all_prompts = [self.prompt] * total
        if isinstance(self.negative_prompt, list):
            self.all_negative_prompts = list(self.negative_prompt)
        else:
            self.all_negative_prompts = [self.negative_prompt] * len(self.all_prompts)

    def close(self) -> None:
        pass

    def js(self) -> str:
        return json.dumps({"prompt": self.main_prompt, "seed": self.seed, "width": self.width,
                           "height": self.height})


class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    def __init__(self, **kwargs: Any):
        kwargs.setdefault("enable_hr", False)
        super().__init__(**kwargs)

    @property
    def hr_checkpoint_name(self) -> str:
        return getattr(self, "_hr_checkpoint_name", "")

    @hr_checkpoint_name.setter
    def hr_checkpoint_name(self, value) -> None:
        self._hr_checkpoint_name = value


class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    @property
    def mode(self) -> str:
        return "img2img"


class Processed:
    """A1111's result object: images plus what made them (prompts, seeds, infotexts)."""

    def __init__(self, p, images_list, seed=-1, info="", subseed=None, all_prompts=None,
                 all_negative_prompts=None, all_seeds=None, all_subseeds=None, index_of_first_image=0,
                 infotexts=None, comments="", extra_images_list=()):
        self.images = list(images_list)
        self.extra_images = list(extra_images_list)
        self.prompt = p.main_prompt if p is not None else ""
        self.negative_prompt = p.main_negative_prompt if p is not None else ""
        self.seed = seed
        self.subseed = subseed
        self.info = info
        self.comments = comments
        for name in ("width", "height", "sampler_name", "cfg_scale", "steps", "batch_size", "subseed_strength",
                     "seed_resize_from_w", "seed_resize_from_h", "denoising_strength", "styles", "clip_skip",
                     "eta", "job_timestamp"):
            setattr(self, name, getattr(p, name, None))
        self.image_cfg_scale = getattr(p, "image_cfg_scale", None)
        self.restore_faces = False
        self.extra_generation_params = dict(getattr(p, "extra_generation_params", {}) or {})
        self.index_of_first_image = index_of_first_image
        self.all_prompts = list(all_prompts or [self.prompt])
        self.all_negative_prompts = list(all_negative_prompts or [self.negative_prompt])
        self.all_seeds = list(all_seeds or [seed])
        self.all_subseeds = list(all_subseeds or [subseed])
        self.infotexts = list(infotexts or [info])

    def js(self) -> str:
        return json.dumps({"prompt": self.prompt, "all_prompts": self.all_prompts, "seed": self.seed,
                           "all_seeds": self.all_seeds, "infotexts": self.infotexts, "width": self.width,
                           "height": self.height, "index_of_first_image": self.index_of_first_image})


def p_from_request(request: GenerationRequest, **extra: Any) -> StableDiffusionProcessing:
    """A `p` for a request: txt2img or img2img class, every field copied."""
    cls = StableDiffusionProcessingImg2Img if request.mode == "img2img" else StableDiffusionProcessingTxt2Img
    fields = {name: getattr(request, name) for name in _REQUEST_FIELDS}
    p = cls(**fields, styles=list(request.styles), override_settings=dict(request.override_settings),
            init_images=list(request.init_images), script_name=request.script_name,
            extensions={k: v for k, v in request.extensions.items()}, **extra)
    p.image_mask = request.mask
    p.do_not_save_samples = not request.save_images
    if request.all_prompts:
        p.all_prompts = list(request.all_prompts)
    return p


def _as_int_list(values) -> tuple[int, ...]:
    return tuple(int(v) for v in values) if values else ()


def request_from_p(p, base: GenerationRequest | None = None) -> GenerationRequest:
    """The request `p` now describes, including per-image prompts and seeds a script set."""
    base = base or GenerationRequest(mode="img2img" if p.mode == "img2img" else "txt2img")
    changes: dict[str, Any] = {}
    for name in _REQUEST_FIELDS:
        if hasattr(p, name):
            changes[name] = getattr(p, name)
    prompt, negative = p.prompt, p.negative_prompt
    changes["prompt"] = prompt if isinstance(prompt, str) else (prompt[0] if prompt else "")
    changes["negative_prompt"] = negative if isinstance(negative, str) else (negative[0] if negative else "")
    changes["mask"] = p.image_mask
    changes["styles"] = tuple(p.styles or ())
    changes["override_settings"] = dict(p.override_settings or {})
    changes["init_images"] = tuple(p.init_images or ())
    changes["save_images"] = not p.do_not_save_samples
    changes["do_not_save_grid"] = bool(p.do_not_save_grid)
    changes["all_prompts"] = tuple(p.all_prompts or ())
    changes["all_negative_prompts"] = tuple(p.all_negative_prompts or ())
    changes["all_seeds"] = _as_int_list(p.all_seeds)
    changes["all_subseeds"] = _as_int_list(p.all_subseeds)
    for name in ("seed", "subseed", "steps", "batch_size", "n_iter", "width", "height"):
        changes[name] = int(changes[name])
    for name in ("cfg_scale", "denoising_strength", "subseed_strength"):
        changes[name] = float(changes[name])
    return dataclasses.replace(base, **changes)


def processed_from_result(p, result: GenerationResult) -> Processed:
    """A1111's Processed for one of our results."""
    return Processed(p, result.images, seed=result.seed, info=result.info,
                     subseed=result.all_subseeds[0] if result.all_subseeds else -1,
                     all_prompts=result.all_prompts, all_negative_prompts=result.all_negative_prompts,
                     all_seeds=result.all_seeds, all_subseeds=result.all_subseeds, infotexts=result.infotexts)


def result_from_processed(processed: Processed, warnings: list[str] | None = None) -> GenerationResult:
    """Our result for what a script's run() returned. A1111 scripts put their grid first and say so with
    `index_of_first_image = 1`: that image becomes `result.grid` (so the service makes no second grid) and
    its infotext `result.extra["grid_infotext"]`; `images` and `infotexts` are the rest. A1111's
    process_images gives the grid no all_prompts / all_seeds entry, so those are kept as they are."""
    images = list(processed.images)
    infotexts = list(processed.infotexts)
    while len(infotexts) < len(images):
        infotexts.append(processed.info)
    grid, extra = None, {}
    if int(processed.index_of_first_image or 0) > 0 and images:
        grid, images = images[0], images[1:]
        extra["grid_infotext"] = infotexts[0]
        infotexts = infotexts[1:]
    return GenerationResult(images=images, infotexts=infotexts[:len(images)], grid=grid, extra=extra,
                            all_prompts=list(processed.all_prompts),
                            all_negative_prompts=list(processed.all_negative_prompts),
                            all_seeds=[int(s) for s in processed.all_seeds if s is not None],
                            all_subseeds=[int(s) for s in processed.all_subseeds if s is not None],
                            warnings=list(warnings or []))
