"""Each A1111 sampler parameter on the tiny SD1.5 model (64x64, 3 steps): it changes the image where A1111's
would, leaves it bit for bit where A1111 ignores it, and is written to infotext (and parsed back) only then."""
from __future__ import annotations

import numpy as np
import pytest

from modules.generation.img2img import generate_img2img
from modules.generation.runtime import GenerationEnv
from modules.generation.txt2img import generate_txt2img
from modules.images.infotext import infotext_to_request_fields, parse_infotext
from modules.settings import DEFAULT_SPECS, Settings
from modules.types import GenerationRequest

BASE = GenerationRequest(prompt="a red house", width=64, height=64, steps=3, sampler_name="Euler", seed=5,
                         cfg_scale=5.0)


@pytest.fixture(scope="module")
def run(sd15, tmp_path_factory):
    """run(request, **settings) -> (image as int array, infotext, warnings) with those settings for the job."""
    folder = tmp_path_factory.mktemp("sampler-params")
    done: dict[str, tuple] = {}  # the same job twice (the plain image of several tests) runs once

    def generate(request: GenerationRequest, **settings):
        key = repr((request, sorted(settings.items())))
        if key not in done:
            done[key] = make_one(request, settings)
        image, info, warnings = done[key]
        return image.copy(), info, list(warnings)

    def make_one(request: GenerationRequest, settings: dict):
        store = Settings(folder / "config.json")
        store.update(settings, save=False)
        env = GenerationEnv(settings=store)
        make = generate_txt2img if request.mode == "txt2img" else generate_img2img
        result = make(sd15, request, env=env)
        return np.asarray(result.images[0].convert("RGB"), dtype=np.int16), result.infotexts[0], result.warnings

    return generate


def differs(a, b) -> bool:
    return float(np.abs(a - b).mean()) > 0.5


def pasted(infotext: str) -> dict:
    return infotext_to_request_fields(parse_infotext(infotext)).get("override_settings", {})


def pasted_changes(infotext: str) -> dict:
    """The settings a pasted infotext sets to other than their defaults (the parser adds A1111's defaults)."""
    defaults = {spec.key: spec.default for spec in DEFAULT_SPECS}
    return {k: v for k, v in pasted(infotext).items() if k in defaults and v != defaults[k]}


def test_sigma_churn_changes_euler_and_is_written_and_pasted_back(run):
    plain, plain_info, _ = run(BASE)
    churned, info, _ = run(BASE, s_churn=1.0)
    assert differs(churned, plain)
    assert "Sigma churn: 1" in info and "Sigma" not in plain_info
    assert pasted(info)["s_churn"] == 1.0


def test_the_api_fields_win_over_the_settings(run):
    plain, _, _ = run(BASE)
    from_request, info, _ = run(BASE.with_changes(s_churn=1.0), s_churn=0.0)
    from_setting, _, _ = run(BASE, s_churn=1.0)
    assert np.array_equal(from_request, from_setting) and differs(from_request, plain)
    assert "Sigma churn: 1" in info


def test_sigma_tmin_tmax_window_and_sigma_noise_shape_the_churn(run):
    plain, _, _ = run(BASE)
    churned, _, _ = run(BASE, s_churn=1.0)
    # A window that holds no sigma turns churn off: the plain image, bit for bit.
    above, info_min, _ = run(BASE, s_churn=1.0, s_tmin=1000.0)
    below, info_max, _ = run(BASE, s_churn=1.0, s_tmax=1e-6)
    assert np.array_equal(above, plain) and np.array_equal(below, plain)
    assert "Sigma tmin: 1000" in info_min and "Sigma tmax: 1e-06" in info_max
    quiet, info_noise, _ = run(BASE, s_churn=1.0, s_noise=0.0)
    assert differs(quiet, churned) and "Sigma noise: 0" in info_noise
    assert pasted(info_noise)["s_noise"] == 0 and pasted(info_min)["s_tmin"] == 1000


@pytest.mark.parametrize("sampler", ["Heun", "DPM2"])
def test_sigma_churn_changes_heun_and_dpm2_and_round_trips(run, sampler):
    request = BASE.with_changes(sampler_name=sampler, steps=2)
    plain, plain_info, _ = run(request)
    churned, info, warnings = run(request, s_churn=1.0)
    assert differs(churned, plain) and "Sigma churn: 1" in info and "Sigma" not in plain_info
    assert not any("churn" in w for w in warnings)
    # Pasted back, the infotext's settings make the same image.
    assert pasted_changes(info) == {"s_churn": 1.0}
    assert np.array_equal(run(request, **pasted_changes(info))[0], churned)
    # A window that holds none of the sigmas is the plain image, bit for bit.
    outside, _, _ = run(request, s_churn=1.0, s_tmin=1000.0)
    assert np.array_equal(outside, plain)


def test_the_churn_noise_is_the_jobs_step_noise(run):
    # Drawn through the job's RNG like any step noise: ENSD moves it (plain Heun draws none, so ENSD does not).
    request = BASE.with_changes(sampler_name="Heun", steps=2)
    churned, _, _ = run(request, s_churn=1.0)
    assert differs(run(request, s_churn=1.0, eta_noise_seed_delta=7)[0], churned)
    assert np.array_equal(run(request, eta_noise_seed_delta=7)[0], run(request)[0])


# The samplers that take A1111's ancestral eta besides Euler a; all but DPM++ SDE draw their step noise from
# the job's RNG (ENSD moves it), DPM++ SDE from its Brownian tree.
ETA_SAMPLERS = ["DPM2 a", "DPM++ 2S a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 3M SDE"]


@pytest.mark.parametrize("sampler", ETA_SAMPLERS)
def test_ancestral_eta_changes_the_image_and_round_trips(run, sampler):
    request = BASE.with_changes(sampler_name=sampler, steps=4)  # at 3 steps eta 0.5 is close to 1 on SDE ones
    plain, plain_info, _ = run(request)
    default, _, _ = run(request, eta_ancestral=1.0)
    assert np.array_equal(default, plain) and "Eta" not in plain_info  # eta 1 is diffusers' own step
    half, info, warnings = run(request, eta_ancestral=0.5)
    assert differs(half, plain) and "Eta: 0.5" in info
    assert not any("Eta" in w for w in warnings)
    assert pasted_changes(info) == {"eta_ancestral": 0.5}
    assert np.array_equal(run(request, **pasted_changes(info))[0], half)


def test_s_noise_scales_the_step_noise_of_the_sde_samplers(run):
    # k-diffusion's s_noise, which A1111 passes to these samplers (step by step for each in _steps.py).
    request = BASE.with_changes(sampler_name="DPM++ 2M SDE", steps=4)
    quieter, info, _ = run(request, s_noise=0.5)
    assert differs(quieter, run(request)[0]) and "Sigma noise: 0.5" in info
    assert pasted_changes(info) == {"s_noise": 0.5}


def test_the_requests_eta_is_the_ancestral_eta(run):
    request = BASE.with_changes(sampler_name="DPM++ 2M SDE", steps=4)
    from_request, info, _ = run(request.with_changes(eta=0.5), eta_ancestral=1.0)
    assert np.array_equal(from_request, run(request, eta_ancestral=0.5)[0]) and "Eta: 0.5" in info


# Each sampler's eta 0 is checked step by step in test_sampler_params_steps; two end to end here.
@pytest.mark.parametrize("sampler", ["DPM++ 2S a", "DPM++ 3M SDE"])
def test_eta_zero_takes_no_step_noise(run, sampler):
    request = BASE.with_changes(sampler_name=sampler, steps=4)
    # ENSD gives the steps other noise (the start noise stays): eta 0 does not see it, eta 1 does.
    zero, _, _ = run(request, eta_ancestral=0.0)
    moved, info, _ = run(request, eta_ancestral=0.0, eta_noise_seed_delta=7)
    assert np.array_equal(moved, zero)
    assert differs(run(request, eta_noise_seed_delta=7)[0], run(request)[0])
    assert "Eta: 0" in info and "ENSD" not in info  # A1111 writes ENSD only for a sampler that adds noise


def test_the_stand_in_samplers_still_ignore_eta_with_a_warning(run):
    request = BASE.with_changes(sampler_name="DPM fast")
    plain, _, _ = run(request)
    with_eta, info, warnings = run(request, eta_ancestral=0.5)
    assert np.array_equal(with_eta, plain) and "Eta" not in info
    assert any("Eta 0.5 is not applied" in w for w in warnings)


def test_eta_ddim_changes_ddim_and_writes_eta_ddim(run):
    ddim = BASE.with_changes(sampler_name="DDIM")
    plain, plain_info, _ = run(ddim)
    noisy, info, _ = run(ddim, eta_ddim=1.0)
    assert differs(noisy, plain) and "Eta DDIM: 1" in info and "Eta" not in plain_info
    assert pasted(info)["eta_ddim"] == 1.0
    # The request's eta is DDIM's eta for a DDIM job.
    same, _, _ = run(ddim.with_changes(eta=1.0))
    assert np.array_equal(same, noisy)


def test_ancestral_eta_changes_euler_a_and_eta_one_is_diffusers_own_step(run):
    euler_a = BASE.with_changes(sampler_name="Euler a")
    plain, plain_info, _ = run(euler_a)
    default, _, _ = run(euler_a, eta_ancestral=1.0)
    assert np.array_equal(default, plain) and "Eta" not in plain_info
    half, info, _ = run(euler_a, eta_ancestral=0.5)
    zero, _, _ = run(euler_a, eta_ancestral=0.0)
    assert differs(half, plain) and differs(zero, half) and "Eta: 0.5" in info
    assert pasted(info)["eta_ancestral"] == 0.5
    # eta 0 takes no noise: it is the deterministic Euler step on the same sigmas.
    euler, _, _ = run(BASE)
    assert np.abs(zero - euler).max() <= 2


def test_eta_means_nothing_to_euler(run):
    plain, _, _ = run(BASE)
    with_eta, info, _ = run(BASE.with_changes(eta=0.3), eta_ancestral=0.3, eta_ddim=0.3)
    assert np.array_equal(with_eta, plain) and "Eta" not in info


@pytest.mark.parametrize("setting, value, label", [("sigma_max", 5.0, "Schedule max sigma: 5"),
                                                   ("sigma_min", 0.5, "Schedule min sigma: 0.5"),
                                                   ("rho", 3.0, "Schedule rho: 3")])
def test_schedule_sigmas_and_rho_change_a_karras_run(run, setting, value, label):
    karras = BASE.with_changes(sampler_name="DPM++ 2M", scheduler="Karras")
    plain, plain_info, _ = run(karras)
    changed, info, _ = run(karras, **{setting: value})
    assert differs(changed, plain) and label in info and "Schedule max sigma" not in plain_info
    assert pasted(info)[setting] == value


def test_schedule_sigmas_mean_nothing_to_the_models_own_schedule(run):
    plain, _, _ = run(BASE)  # Euler, Automatic: the model's sigmas, as A1111
    changed, info, _ = run(BASE, sigma_max=5.0, rho=3.0)
    assert np.array_equal(changed, plain) and "Schedule" not in info.split("Schedule type")[1]


def test_polyexponential_rho_differs_from_exponential(run):
    dpm = BASE.with_changes(sampler_name="DPM++ 2M")
    exponential, _, _ = run(dpm.with_changes(scheduler="Exponential"), rho=2.0)
    poly, info, _ = run(dpm.with_changes(scheduler="Polyexponential"), rho=2.0)
    poly_one, _, _ = run(dpm.with_changes(scheduler="Polyexponential"))
    # Same ends, other sigmas between: the tiny model changes less than a real one would.
    assert float(np.abs(poly - exponential).mean()) > 0.2 and "Schedule rho: 2" in info
    assert np.abs(poly_one - exponential).max() <= 1  # rho 1 is exponential


@pytest.fixture(scope="module")
def img2img(photo):
    return BASE.with_changes(mode="img2img", init_images=(photo.crop((0, 0, 64, 64)),), denoising_strength=0.6)


def test_img2img_noise_multiplier_scales_the_start_noise(run, img2img):
    plain, plain_info, _ = run(img2img)
    quieter, info, warnings = run(img2img, initial_noise_multiplier=0.5)
    assert differs(quieter, plain) and "Noise multiplier: 0.5" in info and "Noise multiplier" not in plain_info
    assert not any("Noise multiplier" in w for w in warnings)
    from_request, _, _ = run(img2img.with_changes(initial_noise_multiplier=0.5))
    assert np.array_equal(from_request, quieter)
    assert infotext_to_request_fields(parse_infotext(info))["initial_noise_multiplier"] == 0.5


def test_img2img_extra_noise_adds_noise_and_txt2img_ignores_it(run, img2img):
    plain, _, _ = run(img2img)
    extra, info, _ = run(img2img, img2img_extra_noise=0.5)
    assert differs(extra, plain) and "Extra noise: 0.5" in info
    assert pasted(info)["img2img_extra_noise"] == 0.5
    txt, txt_info, _ = run(BASE, img2img_extra_noise=0.5)
    assert np.array_equal(txt, run(BASE)[0]) and "Extra noise" not in txt_info


def test_extra_noise_reaches_the_hires_pass(run):
    hires = BASE.with_changes(steps=2, enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", hr_second_pass_steps=2,
                              denoising_strength=0.6)
    plain, _, _ = run(hires)
    extra, info, _ = run(hires, img2img_extra_noise=0.5)
    assert differs(extra, plain) and "Extra noise: 0.5" in info


def test_sigma_churn_reaches_heuns_img2img_start(run, img2img):
    # img2img starts at the first step's sigma_hat (add_noise reads the churned sigma): any churn changes it.
    request = img2img.with_changes(sampler_name="Heun", steps=2)
    plain, _, _ = run(request)
    churned, info, warnings = run(request, s_churn=1.0)
    assert differs(churned, plain) and "Sigma churn: 1" in info and not any("churn" in w for w in warnings)


def test_img2img_fix_steps_runs_exactly_the_given_steps(run, img2img, sd15):
    calls = []
    hook = sd15.pipe.unet.register_forward_hook(lambda *args: calls.append(1))  # derived pipes share the UNet
    try:
        request = img2img.with_changes(steps=4, denoising_strength=0.5, seed=99)  # not run (cached) before
        default, _, _ = run(request)
        by_strength, calls[:] = len(calls), []
        fixed, _, _ = run(request, img2img_fix_steps=True)
        exact = len(calls)
    finally:
        hook.remove()
    assert (by_strength, exact) == (2, 4)  # int(4 * 0.5) steps, then exactly 4 of a schedule of 8
    assert differs(fixed, default)
