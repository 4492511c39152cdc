"""A1111 sampler and schedule-type names as tables of rows, and the diffusers scheduler each one builds.

Every row runs on a diffusers discrete-time scheduler, so images come close to A1111's k-diffusion output
but are not bit-identical. Where diffusers has no exact equivalent, the row maps to the closest scheduler
and says how it differs in `note`; nothing is approximated silently.
"""
from __future__ import annotations

import copy
import inspect
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from modules.types import UserInputError

if TYPE_CHECKING:  # diffusers costs seconds to import: start-up serves first, schedulers load on use
    from diffusers.schedulers.scheduling_utils import SchedulerMixin

FALLBACK_SAMPLER = "Euler"
AUTOMATIC = "Automatic"
# Config keys a schedule type sets; reset before building so a previous choice cannot leak through.
SCHEDULE_KEYS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")
# Attribute on a built scheduler that keeps the model's own config (see `model_scheduler_config`).
BASE_CONFIG_ATTR = "_webui_base_config"


def _frozen(d: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class ScheduleSpec:
    """A1111 "Schedule type": `name` is the label users see ("Karras"), `key` the API id ("karras")."""

    name: str
    key: str
    options: Mapping[str, Any] = field(default_factory=_frozen, hash=False)
    aliases: tuple[str, ...] = ()
    default_rho: float = -1.0
    need_inner_model: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _frozen(self.options))


@dataclass(frozen=True)
class SamplerSpec:
    """One A1111 sampler: the diffusers class, the options it is built with, and how it differs."""

    name: str
    scheduler: str  # the diffusers scheduler class name; `scheduler_cls` imports it on first use
    options: Mapping[str, Any] = field(default_factory=_frozen, hash=False)
    aliases: tuple[str, ...] = ()
    default_schedule: str = AUTOMATIC
    second_order: bool = False
    note: str = ""
    # False where A1111 ignores the Schedule type (DDIM, PLMS, UniPC, DPM fast/adaptive).
    uses_schedule: bool = True
    # Extra A1111 flags shown in /sdapi/v1/samplers "options" (besides scheduler and second_order).
    api_extra: Mapping[str, Any] = field(default_factory=_frozen, hash=False)
    # Names accepted on input but not listed by the API (ComfyUI / diffusers spellings).
    more_aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Rows are shared by every caller: their dicts must not be changeable.
        object.__setattr__(self, "options", _frozen(self.options))
        object.__setattr__(self, "api_extra", _frozen(self.api_extra))

    @property
    def scheduler_cls(self) -> type[SchedulerMixin]:
        import diffusers

        return getattr(diffusers, self.scheduler)

    @property
    def approximated(self) -> bool:
        """True when diffusers cannot express this sampler and a close equivalent runs instead."""
        return self.note.startswith("approximated")


_GEN_NOISE = ("noise comes from the torch generator per step, not A1111's Brownian tree: the same seed "
              "repeats here, but differs from A1111's image")
_NO_SCHEDULE = "ignores Schedule type, as in A1111"

SCHEDULES: tuple[ScheduleSpec, ...] = (
    ScheduleSpec(AUTOMATIC, "automatic", note=(
        "the sampler's default; when that is Automatic too, the model's own scheduler config (SD1.5/SDXL: "
        "'leading' spacing) is kept, where A1111's k-diffusion spaces timesteps evenly from 999 to 0")),
    ScheduleSpec("Uniform", "uniform", {"timestep_spacing": "linspace"}, need_inner_model=True,
                 note="approximated by diffusers' 'linspace' timestep spacing"),
    ScheduleSpec("Karras", "karras", {"use_karras_sigmas": True}, default_rho=7.0),
    ScheduleSpec("Exponential", "exponential", {"use_exponential_sigmas": True}),
    ScheduleSpec("Polyexponential", "polyexponential", {"use_exponential_sigmas": True}, default_rho=1.0,
                 note="at A1111's default rho 1.0 polyexponential is exactly exponential; other rho "
                      "values are not supported"),
    ScheduleSpec("SGM Uniform", "sgm_uniform", {"timestep_spacing": "trailing"}, aliases=("SGMUniform",),
                 need_inner_model=True),
    ScheduleSpec("KL Optimal", "kl_optimal", {"use_karras_sigmas": True},
                 note="approximated by Karras sigmas: diffusers has no KL-optimal schedule"),
    ScheduleSpec("Align Your Steps", "align_your_steps", {"use_karras_sigmas": True},
                 note="approximated by Karras sigmas: the tabulated AYS sigmas are not applied"),
    ScheduleSpec("Simple", "simple", {"timestep_spacing": "trailing"}, need_inner_model=True,
                 note="approximated by 'trailing' timestep spacing (same as SGM Uniform here)"),
    ScheduleSpec("Normal", "normal", {"timestep_spacing": "linspace"}, need_inner_model=True,
                 note="approximated by 'linspace' timestep spacing (same as Uniform here)"),
    ScheduleSpec("DDIM", "ddim", {"timestep_spacing": "leading", "steps_offset": 1}, need_inner_model=True),
    ScheduleSpec("Beta", "beta", {"use_beta_sigmas": True}),
)

_DPMPP = {"algorithm_type": "dpmsolver++", "solver_type": "midpoint"}
_SDE = {"algorithm_type": "sde-dpmsolver++", "solver_type": "midpoint"}
# diffusers switches this on itself (with a logged warning) whenever the zero final sigma is used.
_SINGLE = {"lower_order_final": True}
_DISCARD = "A1111 drops the next-to-last sigma (discard_next_to_last_sigma), diffusers does not"
SAMPLERS: tuple[SamplerSpec, ...] = (
    SamplerSpec("DPM++ 2M", "DPMSolverMultistepScheduler", {**_DPMPP, "solver_order": 2}, ("k_dpmpp_2m",),
                "Karras", more_aliases=("dpmpp_2m",)),
    SamplerSpec("DPM++ SDE", "DPMSolverSDEScheduler", {}, ("k_dpmpp_sde",), "Karras", second_order=True,
                note="Brownian-tree noise seeded per image (noise_sampler_seed = the batch's seeds), as A1111",
                api_extra={"brownian_noise": True}, more_aliases=("dpmpp_sde",)),
    SamplerSpec("DPM++ 2M SDE", "DPMSolverMultistepScheduler", {**_SDE, "solver_order": 2},
                ("k_dpmpp_2m_sde",),
                "Exponential", note=_GEN_NOISE, api_extra={"brownian_noise": True},
                more_aliases=("dpmpp_2m_sde",)),
    SamplerSpec("DPM++ 2M SDE Heun", "DPMSolverMultistepScheduler",
                {**_SDE, "solver_order": 2, "solver_type": "heun"},
                ("k_dpmpp_2m_sde_heun",), "Exponential", note=_GEN_NOISE,
                api_extra={"brownian_noise": True, "solver_type": "heun"}),
    SamplerSpec("DPM++ 2S a", "DPMSolverSinglestepScheduler", {**_SDE, **_SINGLE, "solver_order": 2},
                ("k_dpmpp_2s_a",), "Karras", second_order=True,
                note=("approximated: diffusers has no ancestral single-step DPM++; runs single-step "
                      "order-2 SDE DPM-Solver++ (stochastic like 'a'), one model call per step where A1111 "
                      "makes two"),
                api_extra={"uses_ensd": True}, more_aliases=("dpmpp_2s_ancestral",)),
    SamplerSpec("DPM++ 3M SDE", "DPMSolverMultistepScheduler", {**_SDE, "solver_order": 3},
                ("k_dpmpp_3m_sde",),
                "Exponential", note=f"{_GEN_NOISE}; {_DISCARD}",
                api_extra={"discard_next_to_last_sigma": True, "brownian_noise": True},
                more_aliases=("dpmpp_3m_sde",)),
    SamplerSpec("Euler a", "EulerAncestralDiscreteScheduler", {}, ("k_euler_a", "k_euler_ancestral"),
                note="diffusers' Euler a takes no sigma schedule: other Schedule types fall back to "
                     "Automatic with a warning",
                api_extra={"uses_ensd": True}, more_aliases=("euler_ancestral", "euler_a")),
    SamplerSpec("Euler", "EulerDiscreteScheduler", {}, ("k_euler",), more_aliases=("euler",)),
    SamplerSpec("LMS", "LMSDiscreteScheduler", {}, ("k_lms",), more_aliases=("lms",)),
    SamplerSpec("Heun", "HeunDiscreteScheduler", {}, ("k_heun",), second_order=True, more_aliases=("heun",)),
    SamplerSpec("DPM2", "KDPM2DiscreteScheduler", {}, ("k_dpm_2",), "Karras", second_order=True,
                note=_DISCARD, api_extra={"discard_next_to_last_sigma": True}, more_aliases=("dpm_2",)),
    SamplerSpec("DPM2 a", "KDPM2AncestralDiscreteScheduler", {}, ("k_dpm_2_a",), "Karras", second_order=True,
                note=_DISCARD, api_extra={"discard_next_to_last_sigma": True, "uses_ensd": True},
                more_aliases=("dpm_2_ancestral",)),
    SamplerSpec("DPM fast", "DPMSolverSinglestepScheduler", {**_DPMPP, **_SINGLE, "solver_order": 3},
                ("k_dpm_fast",), uses_schedule=False,
                note=("approximated: single-step order-3 DPM-Solver++ on the model's timesteps; A1111's "
                      "DPM-Solver-fast spaces steps in log-SNR between sigma_min and sigma_max and adds "
                      "eta noise; " + _NO_SCHEDULE),
                api_extra={"uses_ensd": True}, more_aliases=("dpm_fast",)),
    SamplerSpec("DPM adaptive", "DPMSolverSinglestepScheduler", {**_DPMPP, **_SINGLE, "solver_order": 3},
                ("k_dpm_ad",), uses_schedule=False,
                note=("approximated: diffusers has no adaptive step-size control, so this runs exactly "
                      "the given steps with single-step order-3 DPM-Solver++ (same as DPM fast here); "
                      "A1111 ignores the step count and stops at an error tolerance; " + _NO_SCHEDULE),
                api_extra={"uses_ensd": True}, more_aliases=("dpm_adaptive",)),
    SamplerSpec("Restart", "HeunDiscreteScheduler", {}, ("restart",), "Karras", second_order=True,
                note="approximated: Heun steps on the same sigmas without Restart's re-noising segments"),
    SamplerSpec("DDIM", "DDIMScheduler", {}, ("ddim",), uses_schedule=False,
                note="eta is passed at generation time (A1111 setting eta_ddim, default 0); " + _NO_SCHEDULE),
    SamplerSpec("DDIM CFG++", "DDIMScheduler", {}, ("ddim_cfgpp",), uses_schedule=False,
                note=("approximated: plain DDIM; CFG++ re-noises with the unconditional prediction and "
                      "expects a CFG scale near 1, which diffusers' pipelines cannot do; " + _NO_SCHEDULE)),
    SamplerSpec("PLMS", "PNDMScheduler", {"skip_prk_steps": True}, ("plms",), uses_schedule=False,
                note="PNDM without its Runge-Kutta warm-up steps, i.e. PLMS; " + _NO_SCHEDULE),
    SamplerSpec("UniPC", "UniPCMultistepScheduler",
                {"solver_order": 3, "solver_type": "bh1", "predict_x0": True, "lower_order_final": True,
                 # bh1 with a final sigma of zero divides by an infinite step in diffusers (NaN images);
                 # A1111's UniPC also stops at the smallest trained sigma.
                 "final_sigmas_type": "sigma_min"},
                ("unipc",), uses_schedule=False,
                note="order 3, variant bh1 (A1111's uni_pc_order and uni_pc_variant defaults); "
                     + _NO_SCHEDULE,
                more_aliases=("uni_pc",)),
    SamplerSpec("LCM", "LCMScheduler", {}, ("k_lcm",),
                note=("diffusers' LCM picks timesteps from original_inference_steps=50 and takes no sigma "
                      "schedule; meant for LCM models and LoRAs"),
                more_aliases=("lcm",)),
    # Not an A1111 sampler (ComfyUI and reForge have it): for TCD LoRAs, listed after A1111's rows.
    SamplerSpec("TCD", "TCDScheduler", {},
                note=("not in A1111: diffusers' TCD (trajectory consistency distillation) for TCD LoRAs; "
                      "its gamma is the eta given with the job (request eta, else the eta_ddim setting, "
                      "default 0 = deterministic; TCD's authors suggest 0.3)"),
                more_aliases=("tcd",)),
)


def _norm(name: str) -> str:
    return " ".join(str(name).split()).lower()


def _init_keys(cls: type) -> frozenset[str]:
    return frozenset(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}


def find_sampler(name: str | None) -> SamplerSpec | None:
    """The row whose name or alias matches `name` (case-insensitive), else None."""
    wanted = _norm(name or "")
    for spec in SAMPLERS:
        if wanted in (_norm(n) for n in (spec.name, *spec.aliases, *spec.more_aliases)):
            return spec
    return None


def find_schedule(name: str | None) -> ScheduleSpec | None:
    """The schedule whose label, key or alias matches `name` (case-insensitive), else None."""
    wanted = _norm(name or "")
    for spec in SCHEDULES:
        if wanted in (_norm(n) for n in (spec.name, spec.key, *spec.aliases)):
            return spec
    return None


def split_legacy_name(name: str) -> tuple[str, str | None]:
    """'DPM++ 2M Karras' -> ('DPM++ 2M', 'Karras'); a plain or unknown name comes back with None."""
    text = " ".join(str(name).split())
    spec = find_sampler(text)
    if spec is not None:
        return spec.name, None
    # A1111 before 1.9 put Karras/Exponential into the sampler name; k_*_ka aliases were "Karras" too.
    if text.lower().endswith("_ka") and (spec := find_sampler(text[:-3])) is not None:
        return spec.name, "Karras"
    for schedule in sorted(SCHEDULES[1:], key=lambda s: -len(s.name)):
        suffix = " " + schedule.name.lower()
        if text.lower().endswith(suffix) and (spec := find_sampler(text[: -len(suffix)])) is not None:
            return spec.name, schedule.name
    return text, None


# The schedule options each diffusers class takes in __init__, as data: checking a schedule (API and UI
# input) must not import diffusers, which start-up loads in the background. A test compares it with the
# classes; a class missing here is inspected instead.
_ALL_SCHEDULE_OPTIONS = frozenset({"steps_offset", "timestep_spacing", "use_beta_sigmas",
                                   "use_exponential_sigmas", "use_karras_sigmas"})
_SPACING_ONLY = frozenset({"steps_offset", "timestep_spacing"})
SCHEDULE_OPTIONS_TAKEN: Mapping[str, frozenset[str]] = MappingProxyType({
    **dict.fromkeys(("DPMSolverMultistepScheduler", "DPMSolverSDEScheduler", "EulerDiscreteScheduler",
                     "LMSDiscreteScheduler", "HeunDiscreteScheduler", "KDPM2DiscreteScheduler",
                     "KDPM2AncestralDiscreteScheduler", "UniPCMultistepScheduler"), _ALL_SCHEDULE_OPTIONS),
    **dict.fromkeys(("EulerAncestralDiscreteScheduler", "DDIMScheduler", "PNDMScheduler", "LCMScheduler",
                     "TCDScheduler"), _SPACING_ONLY),
    "DPMSolverSinglestepScheduler": frozenset(SCHEDULE_KEYS),  # sigma formulas, no timestep spacing
})


def schedule_supported(sampler: SamplerSpec, schedule: ScheduleSpec) -> bool:
    """Whether `sampler`'s diffusers class can apply `schedule` (Automatic always can)."""
    if not schedule.options:
        return True
    taken = SCHEDULE_OPTIONS_TAKEN.get(sampler.scheduler)
    if taken is None:
        taken = _init_keys(sampler.scheduler_cls)
    return sampler.uses_schedule and set(schedule.options) <= taken


def resolve_sampler(name: str | None, scheduler: str | None = None, *, convert_automatic: bool = True,
                    ) -> tuple[SamplerSpec, ScheduleSpec, list[str]]:
    """Sampler row, effective schedule and warnings; raises UserInputError naming the bad field.

    Automatic becomes the sampler's default schedule (as A1111 writes it into infotext) unless
    `convert_automatic` is False. A schedule the sampler cannot apply falls back to Automatic with a warning.
    """
    warnings: list[str] = []
    if not name or not str(name).strip():
        raise UserInputError("no sampler given", field="sampler_name")
    base_name, legacy_schedule = split_legacy_name(name)
    sampler = find_sampler(base_name)
    if sampler is None:
        choices = ", ".join(s.name for s in SAMPLERS)
        raise UserInputError(f"unknown sampler {str(name)!r}; choose one of: {choices}", field="sampler_name")

    requested = find_schedule(scheduler or AUTOMATIC)
    if requested is None:
        choices = ", ".join(s.name for s in SCHEDULES)
        raise UserInputError(f"unknown schedule type {scheduler!r}; choose one of: {choices}",
                             field="scheduler")
    if legacy_schedule:
        if requested.name == AUTOMATIC:
            requested = find_schedule(legacy_schedule)
        elif requested.name != legacy_schedule:
            warnings.append(f"Sampler name {name!r} implies schedule type {legacy_schedule}; "
                            f"using the given schedule type {requested.name}")

    if sampler.approximated:
        warnings.append(f"Sampler {sampler.name} is {sampler.note}")
    schedule = requested
    if schedule.name == AUTOMATIC and convert_automatic:
        schedule = find_schedule(sampler.default_schedule)
    if not schedule_supported(sampler, schedule):
        why = "diffusers cannot apply it" if sampler.uses_schedule else "A1111 ignores it for this sampler"
        warnings.append(f"Schedule type {schedule.name} is not used with sampler {sampler.name} ({why}); "
                        f"using {AUTOMATIC}")
        schedule = find_schedule(AUTOMATIC)
    if schedule.note and schedule.name != AUTOMATIC:
        warnings.append(f"Schedule type {schedule.name}: {schedule.note}")
    return sampler, schedule, warnings


def resolve_sampler_or_default(name: str | None, scheduler: str | None = None,
                               ) -> tuple[SamplerSpec, ScheduleSpec, list[str]]:
    """Like resolve_sampler, but unknown names fall back (Euler, Automatic) with a warning saying so."""
    try:
        return resolve_sampler(name, scheduler)
    except UserInputError as exc:
        if exc.field == "scheduler":
            sampler, schedule, warnings = resolve_sampler_or_default(name, AUTOMATIC)
            return sampler, schedule, [f"Schedule type {scheduler!r} not found; using {AUTOMATIC}", *warnings]
        sampler, schedule, warnings = resolve_sampler_or_default(FALLBACK_SAMPLER, scheduler)
        return sampler, schedule, [f"Sampler {name!r} not found; using {FALLBACK_SAMPLER}", *warnings]


def model_scheduler_config(scheduler: SchedulerMixin) -> dict[str, Any]:
    """The model's own scheduler config, also when `scheduler` was built by `build_scheduler`."""
    base = getattr(scheduler, BASE_CONFIG_ATTR, None)
    return dict(base if base is not None else scheduler.config)


def build_scheduler(base_scheduler_config: Mapping[str, Any], sampler: SamplerSpec,
                    schedule: ScheduleSpec | None = None, *, seed: int | None = None,
                    steps: int | None = None) -> SchedulerMixin:
    """A fresh scheduler: the model's config (prediction type, betas, spacing) plus the sampler's options.
    `steps` (the num_inference_steps it will be set to, when known) lets a 1-step schedule start at the top."""
    cls = sampler.scheduler_cls
    config, overrides = _build_args(base_scheduler_config, sampler, schedule, _init_keys(cls), seed, steps)
    built = _PROTOTYPES.copy_of(cls, config, overrides)
    setattr(built, BASE_CONFIG_ATTR, _frozen(base_scheduler_config))
    return built


class _Prototypes:
    """Schedulers built once per (class, config) and handed out as deep copies.

    Every pass builds its own scheduler (it changes its state and sometimes its methods), but diffusers'
    KDPM2 constructors convert 1000 sigmas one by one: seconds per pass on a busy CPU, against a millisecond
    for a copy. The prototypes themselves are never handed out, so nothing a pass does can reach another."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._built: OrderedDict[tuple, SchedulerMixin] = OrderedDict()
        self._lock = threading.Lock()

    def copy_of(self, cls, config: Mapping[str, Any], overrides: Mapping[str, Any]) -> SchedulerMixin:
        key = (cls, json.dumps(config, sort_keys=True, default=repr),
               json.dumps(overrides, sort_keys=True, default=repr))
        with self._lock:
            prototype = self._built.get(key)
            if prototype is not None:
                self._built.move_to_end(key)
                return copy.deepcopy(prototype)
        prototype = cls.from_config(dict(config), **overrides)
        with self._lock:
            self._built[key] = prototype
            while len(self._built) > self._size:
                self._built.popitem(last=False)
            return copy.deepcopy(prototype)


_PROTOTYPES = _Prototypes()


def _build_args(base_scheduler_config: Mapping[str, Any], sampler: SamplerSpec, schedule: ScheduleSpec | None,
                keys: frozenset[str], seed: int | None, steps: int | None) -> tuple[dict, dict]:
    base = {k: v for k, v in base_scheduler_config.items() if not k.startswith("_")}
    # Only keys this class knows: the rest belong to the model's original class and would warn.
    config = {k: v for k, v in base.items() if k in keys}
    config.update({k: False for k in SCHEDULE_KEYS if k in keys})
    overrides = dict(sampler.options)
    if schedule is not None and schedule_supported(sampler, schedule):
        overrides.update(schedule.options)
        if any(overrides.get(k) for k in SCHEDULE_KEYS) and "timestep_spacing" in keys:
            # Several diffusers classes (Euler, LMS, Heun, DPM2, DPM++ SDE) take the ends of a sigma
            # formula from the spaced timesteps: with SD's "leading" spacing, 10 Karras steps would start
            # at sigma 8.4 instead of 14.6. A1111 spans the whole trained range; "linspace" reaches both ends.
            overrides["timestep_spacing"] = "linspace"
    spacing = overrides.get("timestep_spacing", config.get("timestep_spacing"))
    if steps == 1 and spacing == "linspace" and "timestep_spacing" in keys:
        # np.linspace(0, 999, 1) is [0]: one "linspace" step (Uniform, Normal, and the sigma formulas, whose
        # ends come from those timesteps) would start at the smallest sigma and return noise. A1111's single
        # step starts at the largest sigma; "trailing" is [999] for one step and the same formula ends.
        overrides["timestep_spacing"] = "trailing"
    if "noise_sampler_seed" in keys:
        # The Brownian tree of DPM++ SDE draws its own noise: seed it or runs are not repeatable.
        overrides["noise_sampler_seed"] = seed
    return config, overrides


# A first timestep below this share of the trained range leaves visible noise in few-step images;
# "leading" spacing gets there below 10 steps (10 steps start at 901 of 999).
FEW_STEP_TOP = 0.9
_FEW_STEPS = 10


def few_step_warning(base_scheduler_config: Mapping[str, Any], sampler: SamplerSpec, schedule: ScheduleSpec,
                     steps: int) -> str | None:
    """A warning when `steps` steps of this sampler/schedule start well below the top noise level (SD's
    "leading" spacing with Automatic: 1 step starts at timestep 1 of 999), else None."""
    if not 1 <= steps < _FEW_STEPS:
        return None
    taken = SCHEDULE_OPTIONS_TAKEN.get(sampler.scheduler, frozenset())
    config, overrides = _build_args(base_scheduler_config, sampler, schedule, taken | {"timestep_spacing"},
                                    0, steps)
    spacing = overrides.get("timestep_spacing", config.get("timestep_spacing"))
    if "timestep_spacing" not in taken or spacing != "leading":
        return None  # only leading spacing starts low; building a scheduler to check costs up to seconds
    built = build_scheduler(base_scheduler_config, sampler, schedule, seed=0, steps=steps)
    built.set_timesteps(steps)
    top = int(built.config.get("num_train_timesteps", 1000)) - 1
    first = float(built.timesteps[0])
    if first >= FEW_STEP_TOP * top:
        return None  # e.g. LCM, whose own timesteps start at 999 whatever the spacing
    unit = "step" if steps == 1 else "steps"
    return (f"Sampler {sampler.name} with schedule type {schedule.name} starts {steps} {unit} at timestep "
            f"{first:.0f} of {top} (the model's 'leading' spacing), so the image keeps noise; few-step "
            f"models (Turbo, Lightning, Hyper-SD) want schedule type SGM Uniform (see docs/fast_paths.md)")


def sampler_names() -> list[str]:
    """Sampler names in A1111's order, for dropdowns."""
    return [s.name for s in SAMPLERS]


def schedule_names() -> list[str]:
    """Schedule-type labels in A1111's order, for dropdowns."""
    return [s.name for s in SCHEDULES]


def api_options(sampler: SamplerSpec) -> dict[str, str]:
    """A1111's /sdapi/v1/samplers "options" for a row (values are strings there, e.g. "True")."""
    options: dict[str, Any] = {}
    if sampler.default_schedule != AUTOMATIC:
        options["scheduler"] = find_schedule(sampler.default_schedule).key
    if sampler.second_order:
        options["second_order"] = True
    options.update(sampler.api_extra)
    return {k: str(v) for k, v in options.items()}


def list_samplers() -> list[dict[str, Any]]:
    """Rows as /sdapi/v1/samplers returns them: name, aliases, options."""
    return [{"name": s.name, "aliases": list(s.aliases), "options": api_options(s)} for s in SAMPLERS]


def list_schedulers() -> list[dict[str, Any]]:
    """Rows as /sdapi/v1/schedulers returns them (name is the key, label the shown name)."""
    return [
        {"name": s.key, "label": s.name, "aliases": list(s.aliases) or None, "default_rho": s.default_rho,
         "need_inner_model": s.need_inner_model}
        for s in SCHEDULES
    ]
