"""Which A1111 sampler parameters apply to which sampler and schedule, their infotext keys, and what they do
to a built diffusers scheduler (no model: schedulers from SD's config only)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from modules.sampler_params import (
    apply_sampler_params,
    karras_sigmas,
    model_sigma_range,
    polyexponential_sigmas,
    resolve_sampler_params,
)
from modules.samplers import build_scheduler, find_sampler, resolve_sampler
from modules.settings import DEFAULT_SPECS
from modules.types import GenerationRequest

SD_CONFIG = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "prediction_type": "epsilon", "timestep_spacing": "leading",
             "steps_offset": 1}
DEFAULTS = {s.key: s.default for s in DEFAULT_SPECS}


def params(sampler: str, schedule: str = "Automatic", request=None, kind="txt2img", **settings):
    spec, sched, _ = resolve_sampler(sampler, schedule)
    values = {**DEFAULTS, **settings}
    return resolve_sampler_params(spec, sched, request or GenerationRequest(), values.__getitem__,
                                  model_sigmas=(0.0292, 14.6146), kind=kind)


def test_defaults_write_nothing_anywhere():
    for sampler in ("Euler", "Euler a", "DDIM", "Heun", "DPM++ 2M", "DPM++ SDE", "UniPC"):
        got = params(sampler)
        assert dict(got.infotext) == {} and got.warnings == () and not got.step_kwargs, sampler


@pytest.mark.parametrize("name, label", [("s_churn", "Sigma churn"), ("s_tmin", "Sigma tmin"),
                                         ("s_tmax", "Sigma tmax"), ("s_noise", "Sigma noise")])
def test_sigma_churn_family_reaches_euler_from_the_request_or_the_setting(name, label):
    value = {"s_churn": 2.0, "s_tmin": 0.5, "s_tmax": 9.0, "s_noise": 0.9}[name]
    from_setting = params("Euler", **{name: value})
    from_request = params("Euler", request=GenerationRequest(**{name: value}), **{name: 7.0})
    assert from_setting.infotext == {label: value} and from_setting.step_kwargs[name] == value
    assert from_request.infotext == {label: value}  # the request wins over the setting
    assert from_setting.step_kwargs["s_tmax"] == (9.0 if name == "s_tmax" else math.inf)  # 0 = no bound


def test_sigma_churn_reaches_heun_and_dpm2_and_means_nothing_to_others():
    for sampler in ("Heun", "DPM2"):
        got = params(sampler, s_churn=1.0)
        assert got.infotext == {"Sigma churn": 1.0} and got.churn["s_churn"] == 1.0 and got.warnings == ()
    other = params("DPM++ 2M", s_churn=1.0)  # A1111 ignores it silently there
    assert other.warnings == () and not other.infotext and not other.churn


def test_eta_ddim_and_ancestral_eta_use_their_own_settings_labels_and_defaults():
    assert params("DDIM", eta_ddim=0.3).infotext == {"Eta DDIM": 0.3}
    assert params("DDIM", eta_ddim=0.3).eta == 0.3
    assert params("DDIM", request=GenerationRequest(eta=0.0), eta_ddim=0.3).infotext == {}
    assert params("Euler a", eta_ancestral=0.5).infotext == {"Eta": 0.5}
    assert params("Euler a", eta_ancestral=0.5).ancestral_eta == 0.5
    assert params("Euler a", eta_ddim=0.5).infotext == {}  # DDIM's setting is not the ancestral one
    assert params("Euler", request=GenerationRequest(eta=0.5)).infotext == {}  # Euler has no eta
    for sampler in ("DPM2 a", "DPM++ 2S a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 3M SDE"):
        got = params(sampler, eta_ancestral=0.5)
        assert got.infotext == {"Eta": 0.5} and got.ancestral_eta == 0.5 and got.warnings == (), sampler
    assert params("DPM2 a", s_noise=0.5).infotext == {"Sigma noise": 0.5}  # s_noise alone: the noise scale
    assert params("Euler a", s_noise=0.5).infotext == {}  # A1111 passes Euler a no s_noise
    assert "Sigma noise 0.5 is not applied" in params("DPM fast", s_noise=0.5).warnings[0]
    for stand_in in ("DPM fast", "DPM adaptive", "Restart"):
        unapplied = params(stand_in, eta_ancestral=0.5)
        assert unapplied.infotext == {} and unapplied.ancestral_eta == 1.0, stand_in
        assert "not applied" in unapplied.warnings[-1], stand_in


def test_schedule_sigmas_and_rho_only_for_formula_schedules_and_only_when_they_differ():
    karras = params("DPM++ 2M", "Karras", sigma_min=0.1, sigma_max=10.0, rho=5.0)
    assert karras.infotext == {"Schedule min sigma": 0.1, "Schedule max sigma": 10.0, "Schedule rho": 5.0}
    assert params("DPM++ 2M", "Karras", rho=7.0).infotext == {}  # Karras' own rho
    assert params("DPM++ 2M", "Karras", sigma_max=14.6146).infotext == {}  # the model's own
    assert params("Euler", "Exponential", rho=3.0).infotext == {}  # exponential has no rho
    assert params("Euler", "Polyexponential", rho=3.0).infotext == {"Schedule rho": 3.0}
    assert params("Euler", "Automatic", sigma_max=10.0).infotext == {}  # the model's sigmas
    assert params("DDIM", sigma_max=10.0).infotext == {}


def test_img2img_noise_multiplier_and_extra_noise_by_pass_kind():
    img2img = params("Euler", kind="img2img", initial_noise_multiplier=0.8, img2img_extra_noise=0.2)
    assert img2img.noise_multiplier == 0.8 and img2img.extra_noise == 0.2
    assert img2img.infotext == {"Extra noise": 0.2}  # "Noise multiplier" comes with the img2img keys
    request = GenerationRequest(initial_noise_multiplier=0.5)
    given = params("Euler", request=request, kind="img2img", initial_noise_multiplier=0.8)
    assert given.noise_multiplier == 0.5
    hires = params("Euler", kind="hires", initial_noise_multiplier=0.8, img2img_extra_noise=0.2)
    assert hires.noise_multiplier == 1.0 and hires.infotext == {"Extra noise": 0.2}
    assert params("Euler", img2img_extra_noise=0.2).extra_noise == 0.0  # txt2img adds no noise


def test_karras_and_polyexponential_formulas_span_the_range():
    k = karras_sigmas(5, 0.1, 10.0, rho=7.0)
    assert k[0] == pytest.approx(10.0) and k[-1] == pytest.approx(0.1) and np.all(np.diff(k) < 0)
    assert not np.allclose(k, karras_sigmas(5, 0.1, 10.0, rho=3.0))
    exp = polyexponential_sigmas(5, 0.1, 10.0, rho=1.0)
    assert np.allclose(np.diff(np.log(exp)), np.diff(np.log(exp))[0])  # rho 1 = exponential
    assert model_sigma_range(build_scheduler(SD_CONFIG, find_sampler("Euler"))) == pytest.approx(
        (0.02917, 14.6146), rel=1e-3)


def sigmas_of(sampler: str, schedule: str, **settings) -> torch.Tensor:
    spec, sched, _ = resolve_sampler(sampler, schedule)
    scheduler = build_scheduler(SD_CONFIG, spec, sched)
    apply_sampler_params(scheduler, params(sampler, schedule, **settings))
    scheduler.set_timesteps(6)
    return scheduler.sigmas


@pytest.mark.parametrize("sampler", ["Euler", "Heun", "DPM++ 2M", "LMS"])
def test_schedule_max_sigma_and_rho_change_a_built_schedulers_sigmas(sampler):
    base = sigmas_of(sampler, "Karras")
    assert float(sigmas_of(sampler, "Karras", sigma_max=5.0).max()) == pytest.approx(5.0, rel=2e-2)
    assert not torch.allclose(sigmas_of(sampler, "Karras", rho=3.0), base)
    assert torch.equal(sigmas_of(sampler, "Karras", rho=7.0), base)


def test_euler_step_gets_the_churn_arguments_and_keeps_its_generator_parameter():
    import inspect

    spec, sched, _ = resolve_sampler("Euler", "Automatic")
    scheduler = build_scheduler(SD_CONFIG, spec, sched)
    apply_sampler_params(scheduler, params("Euler", s_churn=1.0))
    assert scheduler.step.keywords["s_churn"] == 1.0
    assert "generator" in inspect.signature(scheduler.step).parameters  # the pipeline passes it by name
