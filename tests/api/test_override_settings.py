"""override_settings through /sdapi/v1/txt2img on an in-process app: sd_vae for one job (then the previous
VAE again), restore_afterwards=false keeping the override, and the s_* fields reaching the sampler."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from tests.api.inprocess import build_app, build_ctx, local_client

BODY = {"prompt": "a boat", "seed": 3, "width": 64, "height": 64, "steps": 2, "sampler_name": "Euler",
        "cfg_scale": 5}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("override")
    ctx = build_ctx(root, load_model=True)
    assert ctx.model_error is None
    vae = ctx.pipelines.current.pipe.vae
    ctx.paths.vae_dir.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(("first.safetensors", "second.safetensors")):
        gen = torch.Generator().manual_seed(index)
        state = {k: (v + 0.2 * torch.randn(v.shape, generator=gen)).contiguous() for k, v in vae.state_dict().items()}
        save_file(state, str(ctx.paths.vae_dir / name))
    with local_client(build_app(ctx)) as client:
        yield client, ctx
    ctx.close()


def txt2img(client, **extra) -> tuple[np.ndarray, dict]:
    response = client.post("/sdapi/v1/txt2img", json={**BODY, **extra})
    assert response.status_code == 200, response.text
    data = response.json()
    image = Image.open(io.BytesIO(base64.b64decode(data["images"][0]))).convert("RGB")
    return np.asarray(image, dtype=np.int16), json.loads(data["info"])


def test_sd_vae_override_is_used_for_one_job_and_the_previous_vae_comes_back(app):
    client, ctx = app
    base, _ = txt2img(client)
    first, info = txt2img(client, override_settings={"sd_vae": "first.safetensors"})
    second, _ = txt2img(client, override_settings={"sd_vae": "second.safetensors"})
    after, _ = txt2img(client)
    assert np.abs(first - base).mean() > 1 and np.abs(second - first).mean() > 1
    assert np.array_equal(after, base)  # the loaded VAE's weights are back, bit for bit
    assert ctx.settings.get("sd_vae") == "Automatic"
    assert not any("sd_vae" in w for w in info["warnings"])


def test_an_unknown_or_misfit_vae_override_keeps_the_loaded_vae(app):
    client, ctx = app
    bad = ctx.paths.vae_dir / "bad.safetensors"
    save_file({"nonsense.weight": torch.zeros(3)}, str(bad))
    base, _ = txt2img(client)
    same, info = txt2img(client, override_settings={"sd_vae": "bad.safetensors"})
    assert np.array_equal(same, base)
    assert any("bad.safetensors" in w for w in info["warnings"])
    # The infotext names the VAE that made the picture (the checkpoint's own here), not the refused file,
    # or a paste would ask for the broken file again.
    from modules.images.infotext import parse_infotext

    assert "VAE" not in parse_infotext(info["infotexts"][0])


def test_the_s_fields_reach_the_sampler(app):
    client, _ = app
    base, _ = txt2img(client)
    churned, info = txt2img(client, s_churn=1.0, s_noise=0.5)
    assert np.abs(churned - base).mean() > 0.5
    assert "Sigma churn: 1" in info["infotexts"][0] and "Sigma noise: 0.5" in info["infotexts"][0]
    assert not any("s_churn" in w for w in info["warnings"])
    outside, _ = txt2img(client, s_churn=1.0, s_tmin=1000.0)  # no sigma inside the window: no churn
    assert np.array_equal(outside, base)


def test_restore_afterwards_false_keeps_the_override_in_the_settings(app):
    client, ctx = app
    try:
        kept, _ = txt2img(client, override_settings={"sd_vae": "first.safetensors", "eta_ancestral": 0.5},
                          override_settings_restore_afterwards=False)
        assert ctx.settings.get("sd_vae") == "first.safetensors" and ctx.settings.get("eta_ancestral") == 0.5
        again, _ = txt2img(client)  # after the VAE reload the setting asked for: the same VAE
        assert np.array_equal(again, kept)
    finally:
        ctx.settings.update({"sd_vae": "Automatic", "eta_ancestral": 1.0}, save=False)


WEIGHTED = {"prompt": "a (boat:1.4), sea", "sampler_name": "Euler a"}  # emphasis and eta need both


@pytest.fixture(scope="module")
def weighted_base(app):
    return txt2img(app[0], **WEIGHTED)


@pytest.mark.parametrize("overrides, written", [
    ({"CLIP_stop_at_last_layers": 2}, "Clip skip: 2"),
    ({"emphasis": "No norm"}, "Emphasis: No norm"),
    ({"randn_source": "NV"}, "RNG: NV"),
    ({"eta_noise_seed_delta": 31337}, "ENSD: 31337"),
    ({"eta_ancestral": 0.5}, "Eta: 0.5"),
], ids=lambda v: next(iter(v)) if isinstance(v, dict) else None)
def test_each_listed_override_changes_this_job_only(app, weighted_base, overrides, written):
    client, ctx = app
    base, base_info = weighted_base
    changed, info = txt2img(client, **WEIGHTED, override_settings=overrides)
    assert written in info["infotexts"][0] and written not in base_info["infotexts"][0]
    assert np.abs(changed - base).mean() > 0.3
    key = next(iter(overrides))
    assert ctx.settings.get(key) != overrides[key]  # the store never saw the override


def test_after_the_overridden_jobs_the_next_job_is_the_plain_one_again(app, weighted_base):
    client, _ = app
    after, _ = txt2img(client, **WEIGHTED)
    assert np.array_equal(after, weighted_base[0])


def test_a_pasted_infotexts_sampler_parameters_become_override_settings():
    from webui.api.convert import apply_infotext
    from webui.api.schemas import Txt2ImgRequest

    text = ("a boat\nSteps: 3, Sampler: Euler, Schedule type: Karras, CFG scale: 5, Seed: 1, Size: 64x64, "
            "Eta: 0.5, Eta DDIM: 0.2, Sigma churn: 1, Sigma tmin: 0.1, Sigma tmax: 9, Sigma noise: 0.9, "
            "Schedule max sigma: 10, Schedule min sigma: 0.1, Schedule rho: 5, Extra noise: 0.2")
    body, _ = apply_infotext(Txt2ImgRequest(infotext=text, override_settings={"s_churn": 2.0}))
    assert body.override_settings | {"s_churn": 2.0} == body.override_settings  # the client's own wins
    expected = {"eta_ancestral": 0.5, "eta_ddim": 0.2, "s_tmin": 0.1, "s_tmax": 9, "s_noise": 0.9,
                "sigma_max": 10, "sigma_min": 0.1, "rho": 5, "img2img_extra_noise": 0.2}
    assert expected.items() <= body.override_settings.items()
    assert body.eta is None  # each sampler reads its own eta setting, as A1111 pastes them


def test_a_separate_vae_is_named_and_hashed_in_the_infotext_and_pastes_back_as_sd_vae(app):
    from modules.images.infotext import infotext_to_request_fields, parse_infotext
    from modules.pipelines.hashes import sha256_file

    client, ctx = app
    _, own = txt2img(client)  # the checkpoint's own VAE: no VAE keys, as A1111
    assert "VAE" not in parse_infotext(own["infotexts"][0])
    _, info = txt2img(client, override_settings={"sd_vae": "first.safetensors"})
    text = info["infotexts"][0]
    parsed = parse_infotext(text)
    # A1111's VAE hash: the file's sha256, first 10 hex digits; written after Model, before the rest.
    assert parsed["VAE hash"] == sha256_file(ctx.paths.vae_dir / "first.safetensors")[:10]
    assert parsed["VAE"] == "first.safetensors"
    assert text.index("Model: ") < text.index("VAE hash: ") < text.index("VAE: first")
    assert infotext_to_request_fields(parsed)["sd_vae"] == "first.safetensors"
    # Pasted back through the API's `infotext` field, the VAE is this job's again.
    _, again = txt2img(client, infotext=text)
    assert parse_infotext(again["infotexts"][0])["VAE"] == "first.safetensors"
    try:
        ctx.settings.update({"sd_vae": "second.safetensors"}, save=False)  # the stored choice counts too
        _, stored = txt2img(client)
        assert parse_infotext(stored["infotexts"][0])["VAE"] == "second.safetensors"
    finally:
        ctx.settings.update({"sd_vae": "Automatic"}, save=False)
