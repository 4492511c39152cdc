"""Sampler table: every A1111 name runs on a tiny pipeline, names resolve, the model's config is kept."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from modules.paths import CONFIGS_DIR
from modules.samplers import (
    SAMPLERS,
    SCHEDULES,
    build_scheduler,
    find_sampler,
    find_schedule,
    list_samplers,
    list_schedulers,
    model_scheduler_config,
    resolve_sampler,
    resolve_sampler_or_default,
    schedule_supported,
    split_legacy_name,
)
from modules.types import UserInputError

A1111_ORDER = [
    "DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 2S a", "DPM++ 3M SDE", "Euler a",
    "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM fast", "DPM adaptive", "Restart", "DDIM", "DDIM CFG++",
    "PLMS", "UniPC", "LCM",
]
# Rows A1111 lacks, after its own: few-step samplers other UIs name this way (docs/fast_paths.md).
EXTRA_ROWS = ["TCD"]
SCHEDULE_ORDER = [
    "Automatic", "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform", "KL Optimal",
    "Align Your Steps", "Simple", "Normal", "DDIM", "Beta",
]
STEPS = 3


def scheduler_config(arch: str) -> dict:
    return json.loads((CONFIGS_DIR / arch / "scheduler" / "scheduler_config.json").read_text())


def run(pipe, scheduler, seed: int = 1) -> np.ndarray:
    # A new pipeline object around the shared components: the session pipeline itself stays untouched.
    local = type(pipe)(**{**pipe.components, "scheduler": scheduler, "requires_safety_checker": False})
    local.set_progress_bar_config(disable=True)
    out = local("a cat", num_inference_steps=STEPS, guidance_scale=5.0, height=64, width=64,
                generator=torch.Generator().manual_seed(seed), output_type="np")
    return out.images


# ---- the table ---------------------------------------------------------------------------
def test_rows_follow_a1111_order_and_schedules_are_known():
    assert [s.name for s in SAMPLERS] == A1111_ORDER + EXTRA_ROWS
    assert [s.name for s in SCHEDULES] == SCHEDULE_ORDER
    for spec in SAMPLERS:
        default = find_schedule(spec.default_schedule)
        assert default is not None and schedule_supported(spec, default), spec.name
    assert all(s.note for s in SAMPLERS if s.name in ("DPM fast", "DPM adaptive", "Restart", "DDIM CFG++",
                                                      "DPM++ 2S a", "DPM++ 2M SDE Heun"))


def test_rows_are_immutable():
    with pytest.raises(TypeError):
        SAMPLERS[0].options["solver_order"] = 3
    with pytest.raises(TypeError):
        find_schedule("Karras").options["use_karras_sigmas"] = False


def test_default_schedules_follow_a1111():
    defaults = {s.name: s.default_schedule for s in SAMPLERS}
    assert defaults["DPM++ 2M"] == defaults["DPM++ SDE"] == defaults["DPM2"] == "Karras"
    assert defaults["DPM++ 2M SDE"] == defaults["DPM++ 3M SDE"] == "Exponential"
    assert defaults["Euler"] == defaults["Euler a"] == defaults["DDIM"] == "Automatic"


def test_api_listings_have_a1111_shape():
    samplers = {row["name"]: row for row in list_samplers()}
    assert list(samplers) == A1111_ORDER + EXTRA_ROWS  # A1111 extensions add samplers to this list too
    assert samplers["Euler a"]["aliases"] == ["k_euler_a", "k_euler_ancestral"]
    assert samplers["DPM++ 2M"]["options"] == {"scheduler": "karras"}
    assert samplers["DPM++ SDE"]["options"]["second_order"] == "True"
    schedulers = {row["label"]: row for row in list_schedulers()}
    assert list(schedulers) == SCHEDULE_ORDER
    assert schedulers["Karras"] == {"name": "karras", "label": "Karras", "aliases": None, "default_rho": 7.0,
                                    "need_inner_model": False}
    assert schedulers["SGM Uniform"]["aliases"] == ["SGMUniform"]
    assert schedulers["Automatic"]["default_rho"] == -1


# ---- names -------------------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("DPM++ 2M Karras", ("DPM++ 2M", "Karras")),
    ("DPM++ 2M SDE Exponential", ("DPM++ 2M SDE", "Exponential")),
    ("DPM++ SDE Karras", ("DPM++ SDE", "Karras")),
    ("k_dpmpp_2m_ka", ("DPM++ 2M", "Karras")),
    ("DDIM", ("DDIM", None)),
    ("DPM++ 2M SDE Heun", ("DPM++ 2M SDE Heun", None)),
    ("Euler a", ("Euler a", None)),
    ("no such thing", ("no such thing", None)),
])
def test_split_legacy_name(name, expected):
    assert split_legacy_name(name) == expected


@pytest.mark.parametrize("alias, name", [
    ("k_euler_a", "Euler a"), ("k_euler_ancestral", "Euler a"), ("euler_ancestral", "Euler a"),
    ("k_dpmpp_2m", "DPM++ 2M"), ("dpmpp_2m_sde", "DPM++ 2M SDE"), ("k_lms", "LMS"), ("plms", "PLMS"),
    ("euler a", "Euler a"), (" DPM++  2M ", "DPM++ 2M"), ("ddim_cfgpp", "DDIM CFG++"), ("uni_pc", "UniPC"),
])
def test_aliases(alias, name):
    assert find_sampler(alias).name == name


def test_legacy_name_resolves_to_sampler_and_schedule():
    sampler, schedule, warnings = resolve_sampler("DPM++ 2M Karras", "Automatic")
    assert (sampler.name, schedule.name, warnings) == ("DPM++ 2M", "Karras", [])
    sampler, schedule, warnings = resolve_sampler("DPM++ 2M Karras", "Exponential")
    assert schedule.name == "Exponential" and "implies schedule type Karras" in warnings[0]


def test_automatic_becomes_the_sampler_default_unless_asked_not_to():
    assert resolve_sampler("DPM++ 2M", None)[1].name == "Karras"
    assert resolve_sampler("DPM++ 2M", "Automatic", convert_automatic=False)[1].name == "Automatic"
    assert resolve_sampler("Euler", "sgm_uniform")[1].name == "SGM Uniform"


def test_unknown_sampler_names_the_field():
    with pytest.raises(UserInputError) as err:
        resolve_sampler("Euler b")
    assert err.value.field == "sampler_name"
    assert str(err.value).startswith("sampler_name: unknown sampler 'Euler b'")
    with pytest.raises(UserInputError) as err:
        resolve_sampler("Euler", "Wobbly")
    assert err.value.field == "scheduler"


def test_fallback_says_so():
    sampler, schedule, warnings = resolve_sampler_or_default("Euler b", "Karras")
    assert (sampler.name, schedule.name) == ("Euler", "Karras")
    assert warnings == ["Sampler 'Euler b' not found; using Euler"]
    sampler, schedule, warnings = resolve_sampler_or_default("nope", "bad")
    assert (sampler.name, schedule.name) == ("Euler", "Automatic") and len(warnings) == 2


def test_unsupported_schedule_falls_back_with_a_warning():
    _, schedule, warnings = resolve_sampler("Euler a", "Karras")
    assert schedule.name == "Automatic" and "not used with sampler Euler a" in warnings[0]
    _, schedule, warnings = resolve_sampler("DDIM", "Karras")
    assert schedule.name == "Automatic" and "A1111 ignores it" in warnings[0]


def test_approximations_are_reported():
    assert any("approximated" in w for w in resolve_sampler("DPM adaptive")[2])
    assert any("KL Optimal" in w for w in resolve_sampler("Euler", "KL Optimal")[2])
    assert resolve_sampler("DPM++ 2M")[2] == []


# ---- an independent expectation: what each A1111 name must build ------------------------------
# Written by hand from A1111's sampler list (1.9+: Schedule type split out, each sampler's default
# schedule) and diffusers' "A1111/k-diffusion -> diffusers" scheduler table, not read from SAMPLERS.
# (The diffusers table pairs "DPM++ SDE" with the single-step solver; A1111's DPM++ SDE is k-diffusion's
# stochastic sampler with a Brownian tree, which is diffusers' DPMSolverSDEScheduler.)
# name -> (class name, options the built scheduler's config must have with the sampler's default schedule)
EXPECTED_ROWS = {
    "DPM++ 2M": ("DPMSolverMultistepScheduler",
                 {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    "DPM++ SDE": ("DPMSolverSDEScheduler", {"use_karras_sigmas": True}),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler",
                     {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "solver_type": "midpoint",
                      "use_exponential_sigmas": True, "use_karras_sigmas": False}),
    "DPM++ 2M SDE Heun": ("DPMSolverMultistepScheduler",
                          {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "solver_type": "heun",
                           "use_exponential_sigmas": True}),
    "DPM++ 2S a": ("DPMSolverSinglestepScheduler",
                   {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    "DPM++ 3M SDE": ("DPMSolverMultistepScheduler",
                     {"algorithm_type": "sde-dpmsolver++", "solver_order": 3,
                      "use_exponential_sigmas": True}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "Euler": ("EulerDiscreteScheduler",
              {"use_karras_sigmas": False, "use_exponential_sigmas": False, "use_beta_sigmas": False}),
    "LMS": ("LMSDiscreteScheduler", {"use_karras_sigmas": False}),
    "Heun": ("HeunDiscreteScheduler", {"use_karras_sigmas": False}),
    "DPM2": ("KDPM2DiscreteScheduler", {"use_karras_sigmas": True}),
    "DPM2 a": ("KDPM2AncestralDiscreteScheduler", {"use_karras_sigmas": True}),
    "DPM fast": ("DPMSolverSinglestepScheduler", {"use_karras_sigmas": False}),
    "DPM adaptive": ("DPMSolverSinglestepScheduler", {"use_karras_sigmas": False}),
    "Restart": ("HeunDiscreteScheduler", {"use_karras_sigmas": True}),
    "DDIM": ("DDIMScheduler", {}),
    "DDIM CFG++": ("DDIMScheduler", {}),
    "PLMS": ("PNDMScheduler", {"skip_prk_steps": True}),
    "UniPC": ("UniPCMultistepScheduler", {"solver_order": 3, "solver_type": "bh1"}),
    "LCM": ("LCMScheduler", {}),
    "TCD": ("TCDScheduler", {}),
}
# Rows diffusers cannot express exactly ("N/A" in the diffusers table): they must say so.
EXPECTED_APPROXIMATED = {"DPM++ 2S a", "DPM fast", "DPM adaptive", "Restart", "DDIM CFG++"}
# (sampler, schedule type) -> options an explicit Schedule type must set
EXPECTED_SCHEDULES = {
    ("Euler", "Karras"): {"use_karras_sigmas": True, "use_exponential_sigmas": False},
    ("Euler", "Exponential"): {"use_exponential_sigmas": True, "use_karras_sigmas": False},
    ("Euler", "Beta"): {"use_beta_sigmas": True, "use_karras_sigmas": False},
    ("Euler", "SGM Uniform"): {"timestep_spacing": "trailing", "use_karras_sigmas": False},
    ("Euler", "Uniform"): {"timestep_spacing": "linspace"},
    ("DPM++ 2M", "Exponential"): {"use_exponential_sigmas": True, "use_karras_sigmas": False},
    ("DPM++ 2M SDE", "Karras"): {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True,
                                 "use_exponential_sigmas": False},
    ("DPM++ 2M", "Automatic"): {"use_karras_sigmas": True},  # Automatic = the sampler's default
    ("LMS", "Karras"): {"use_karras_sigmas": True},
    ("Heun", "Exponential"): {"use_exponential_sigmas": True},
}


def test_the_table_covers_exactly_a1111s_samplers():
    assert set(EXPECTED_ROWS) == set(A1111_ORDER + EXTRA_ROWS)


@pytest.mark.parametrize("name", list(EXPECTED_ROWS))
def test_each_name_builds_the_expected_scheduler(name):
    cls_name, options = EXPECTED_ROWS[name]
    sampler, schedule, warnings = resolve_sampler(name)
    built = build_scheduler(scheduler_config("sd15"), sampler, schedule, seed=1)
    assert type(built).__name__ == cls_name
    assert {k: built.config.get(k) for k in options} == options
    assert sampler.approximated == (name in EXPECTED_APPROXIMATED)
    assert any("approximated" in w for w in warnings) == (name in EXPECTED_APPROXIMATED)


@pytest.mark.parametrize("sampler_name, schedule_name", list(EXPECTED_SCHEDULES))
def test_each_schedule_type_sets_the_expected_options(sampler_name, schedule_name):
    sampler, schedule, _ = resolve_sampler(sampler_name, schedule_name)
    built = build_scheduler(scheduler_config("sd15"), sampler, schedule)
    expected = EXPECTED_SCHEDULES[(sampler_name, schedule_name)]
    assert {k: built.config.get(k) for k in expected} == expected


def _training_sigmas() -> np.ndarray:
    """SD's trained noise levels from its betas (scaled_linear 0.00085..0.012 over 1000 steps)."""
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2
    alphas = np.cumprod(1 - betas)
    return np.sqrt((1 - alphas) / alphas)


def test_karras_sigmas_follow_the_karras_formula():
    # Karras et al. (2022), rho 7, between the model's smallest and largest trained sigma.
    trained = _training_sigmas()
    lo, hi, n, rho = trained[0], trained[-1], 10, 7.0
    ramp = np.linspace(0, 1, n)
    want = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    built = build_scheduler(scheduler_config("sd15"), *resolve_sampler("Euler", "Karras")[:2])
    built.set_timesteps(n)
    np.testing.assert_allclose(built.sigmas[:-1].numpy(), want, rtol=1e-3)
    assert float(built.sigmas[-1]) == 0.0


SIGMA_SCHEDULES = ("Karras", "Exponential", "Beta")


@pytest.mark.parametrize("schedule_name", SIGMA_SCHEDULES)
@pytest.mark.parametrize("arch", ["sd15", "sdxl-base"])
def test_sigma_schedules_span_the_whole_trained_range_for_every_sampler(schedule_name, arch):
    # A1111 (k-diffusion) runs these formulas from the model's largest trained sigma to its smallest,
    # whatever timestep spacing the model's own scheduler config uses ("leading" for SD1.5 and SDXL).
    trained = _training_sigmas()
    checked = 0
    for spec in SAMPLERS:
        sampler, schedule, _ = resolve_sampler(spec.name, schedule_name)
        if schedule.name != schedule_name:
            continue  # the sampler cannot take this schedule (Euler a, DDIM, ...): warned, Automatic
        built = build_scheduler(scheduler_config(arch), sampler, schedule, seed=1)
        built.set_timesteps(10)
        sigmas = built.sigmas.numpy()
        used = sigmas[sigmas > 0]
        assert used.max() == pytest.approx(trained[-1], rel=1e-3), spec.name
        assert used.min() == pytest.approx(trained[0], rel=1e-3), spec.name
        checked += 1
    assert checked >= 10


def test_exponential_sigmas_are_evenly_spaced_in_log():
    trained = _training_sigmas()
    built = build_scheduler(scheduler_config("sd15"), *resolve_sampler("DPM++ 2M SDE")[:2])
    built.set_timesteps(8)
    got = built.sigmas[:-1].numpy()
    np.testing.assert_allclose(got, np.exp(np.linspace(np.log(trained[-1]), np.log(trained[0]), 8)),
                               rtol=1e-3)


def test_sgm_uniform_timesteps_are_trailing():
    built = build_scheduler(scheduler_config("sd15"), *resolve_sampler("Euler", "SGM Uniform")[:2])
    built.set_timesteps(4)
    # trailing: from the last trained step down in equal strides, never reaching 0
    assert [round(float(t)) for t in built.timesteps] == [999, 749, 499, 249]


def test_two_samplers_give_two_different_images(tiny_sd15_pipe):
    from modules.generation.txt2img import generate_txt2img
    from modules.pipelines.manager import LoadedModel
    from modules.types import GenerationRequest
    from tests.unit.generation.conftest import loaded

    model: LoadedModel = loaded(tiny_sd15_pipe, "tiny-sd15", "sd15")
    request = GenerationRequest(prompt="a cat", width=64, height=64, steps=4, seed=3)
    images = {name: np.asarray(generate_txt2img(model, request.with_changes(sampler_name=name)).images[0],
                               dtype=np.int16) for name in ("Euler", "Euler a", "DPM++ 2M")}
    assert np.abs(images["Euler"] - images["Euler a"]).mean() > 1
    assert np.abs(images["Euler"] - images["DPM++ 2M"]).mean() > 1


# ---- building schedulers from the model's config ------------------------------------------
def test_v_prediction_and_model_config_are_kept():
    base = scheduler_config("sd2-v")
    for spec in SAMPLERS:
        sampler, schedule, _ = resolve_sampler(spec.name)
        built = build_scheduler(base, sampler, schedule, seed=1)
        assert isinstance(built, spec.scheduler_cls)
        assert built.config.prediction_type == "v_prediction", spec.name
        assert built.config.beta_schedule == "scaled_linear"
        if "steps_offset" in built.config:
            assert built.config.steps_offset == 1


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_sdxl_timestep_spacing_is_kept(spacing):
    # (sigma formulas - Karras, Exponential, Beta - span the full range instead: see below)
    base = {**scheduler_config("sdxl-base"), "timestep_spacing": spacing}
    for name in ("Euler", "Euler a", "DDIM", "LMS", "UniPC"):
        sampler, schedule, _ = resolve_sampler(name)
        assert build_scheduler(base, sampler, schedule).config.timestep_spacing == spacing


def test_schedule_options_override_only_what_they_need():
    base = scheduler_config("sdxl-base")
    sampler, schedule, _ = resolve_sampler("Euler", "SGM Uniform")
    built = build_scheduler(base, sampler, schedule)
    assert built.config.timestep_spacing == "trailing" and built.config.steps_offset == 1
    # A scheduler built earlier hands back the model's own config, so choices do not pile up.
    karras = build_scheduler(base, *resolve_sampler("DPM++ 2M")[:2])
    assert karras.config.use_karras_sigmas
    again = build_scheduler(model_scheduler_config(karras), *resolve_sampler("DPM++ 2M", "Exponential")[:2])
    assert again.config.use_exponential_sigmas and not again.config.use_karras_sigmas
    assert model_scheduler_config(again)["_class_name"] == "EulerDiscreteScheduler"


def test_karras_and_automatic_give_different_sigmas():
    base = scheduler_config("sd15")
    sampler = find_sampler("Euler")
    automatic = build_scheduler(base, sampler, find_schedule("Automatic"))
    karras = build_scheduler(base, sampler, find_schedule("Karras"))
    automatic.set_timesteps(10)
    karras.set_timesteps(10)
    assert automatic.sigmas.shape == karras.sigmas.shape
    assert not torch.allclose(automatic.sigmas, karras.sigmas)
    # Karras starts from the largest trained sigma (A1111), not from the first "leading" timestep
    assert float(karras.sigmas[0]) == pytest.approx(_training_sigmas()[-1], rel=1e-3)
    assert float(automatic.sigmas[0]) < float(karras.sigmas[0])


def test_dpmpp_sde_gets_the_seed():
    sampler, schedule, _ = resolve_sampler("DPM++ SDE")
    assert build_scheduler(scheduler_config("sd15"), sampler, schedule, seed=1234).noise_sampler_seed == 1234


# ---- every sampler runs ------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_thread():
    """One torch thread: a tiny UNet gains nothing from two, and spinning threads stall on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", A1111_ORDER)
def test_every_sampler_makes_a_finite_repeatable_image(tiny_sd15_pipe, one_thread, name):
    base = model_scheduler_config(tiny_sd15_pipe.scheduler)
    sampler, schedule, _ = resolve_sampler(name)
    first = run(tiny_sd15_pipe, build_scheduler(base, sampler, schedule, seed=7), seed=7)
    second = run(tiny_sd15_pipe, build_scheduler(base, sampler, schedule, seed=7), seed=7)
    assert first.shape == (1, 64, 64, 3)
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, second)


def test_a_scheduler_is_constructed_once_per_config_and_each_job_gets_its_own_copy(monkeypatch):
    # diffusers' KDPM2 constructors convert 1000 sigmas one by one (seconds on a loaded CPU) on every pass;
    # the same config is built once and copied. Each copy must be independent: a pass changes its own.
    from diffusers import KDPM2DiscreteScheduler

    sampler, schedule = resolve_sampler("DPM2", "Karras")[:2]
    calls = []
    original = KDPM2DiscreteScheduler.from_config.__func__

    def counting(cls, *args, **kwargs):
        calls.append(1)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(KDPM2DiscreteScheduler, "from_config", classmethod(counting))
    config = {**scheduler_config("sd15"), "beta_end": 0.0121}  # a config no other test built
    first = build_scheduler(config, sampler, schedule)
    second = build_scheduler(config, sampler, schedule)
    assert len(calls) == 1
    assert first is not second and dict(first.config) == dict(second.config)
    first.set_timesteps(5)
    second.set_timesteps(9)
    # Second order: each step but the last has a midpoint evaluation.
    assert (len(first.timesteps), len(second.timesteps)) == (2 * 5 - 1, 2 * 9 - 1)
    other = build_scheduler({**config, "beta_end": 0.0122}, sampler, schedule)
    assert len(calls) == 2 and other.config.beta_end == 0.0122
