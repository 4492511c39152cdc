"""The built-in LoRA extension in a real AppContext (tiny SD 1.5 single file): tags in every generation
path, weights, caching, infotext hashes and bad input. One context for the module (built once)."""
from __future__ import annotations

import hashlib
import json
import struct
import time

import numpy as np
import pytest
import torch

from modules.generation.service import submit_generation
from modules.images.infotext import parse_infotext
from modules.types import GenerationRequest
from tests.fixtures.loras import kohya_lora, kohya_metadata, lycoris_lora, write_lora
from tests.integration.conftest import WAIT, loaded_context

REQUEST = GenerationRequest(prompt="a red house", seed=7, width=64, height=64, steps=2, batch_size=1,
                            save_images=False)


@pytest.fixture(scope="module")
def lora_ctx(tmp_path_factory, tiny_sd15_checkpoint, tiny_sd15_pipe, tiny_sdxl_pipe):
    root = tmp_path_factory.mktemp("lora-ctx")
    loras = root / "Lora"
    write_lora(loras / "film.safetensors", kohya_lora(tiny_sd15_pipe, seed=1, strength=0.3),
               kohya_metadata("film_grain"))
    write_lora(loras / "styles" / "ink.safetensors", kohya_lora(tiny_sd15_pipe, seed=2, strength=0.3, ldm=True))
    write_lora(loras / "xl.safetensors", kohya_lora(tiny_sdxl_pipe, seed=3))
    lycoris = root / "data" / "models" / "LyCORIS"  # the other folder searched; LyCORIS kinds, kohya names
    write_lora(lycoris / "hada.safetensors", lycoris_lora(tiny_sd15_pipe, "loha", seed=4, rank=2, alpha=1.0))
    write_lora(lycoris / "kron.safetensors", lycoris_lora(tiny_sd15_pipe, "lokr", seed=5, rank=2, alpha=1.0))
    write_lora(lycoris / "oft.safetensors", {"lora_unet_x.oft_blocks": torch.zeros(2, 2, 2)})
    (loras / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    ctx = loaded_context(root / "data", tiny_sd15_checkpoint, "--lora-dir", str(loras))
    assert ctx.extensions.info("lora").status == "loaded", ctx.extensions.info("lora").error
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def base(lora_ctx):
    return pixels(generate(lora_ctx, "a red house"))


@pytest.fixture(scope="module")
def film(lora_ctx):
    return pixels(generate(lora_ctx, "a red house <lora:film:1>"))


def network(ctx):
    return ctx.extensions.registry.provider("extra_network", "lora").provider


def generate(ctx, prompt: str, **changes):
    job = submit_generation(ctx, REQUEST.with_changes(prompt=prompt, **changes))
    result = job.wait_result(WAIT)
    assert job.state == "done", job.error
    return result


def pixels(result, index: int = 0) -> np.ndarray:
    return np.asarray(result.images[index]).astype(np.int16)


def test_weight_zero_is_the_base_image_and_weights_change_it_in_order(lora_ctx, base, film):
    zero = pixels(generate(lora_ctx, "a red house <lora:film:0>"))
    half = pixels(generate(lora_ctx, "a red house <lora:film:0.5>"))
    after = pixels(generate(lora_ctx, "a red house"))
    assert np.array_equal(zero, base)
    assert np.array_equal(after, base)  # adapters are off after the batch
    d_half, d_full = (np.abs(image - base).mean() for image in (half, film))
    assert 0 < d_half < d_full


def test_two_loras_te_only_unet_only_alias_lyco_and_ldm_names(lora_ctx, base, film):
    ink = pixels(generate(lora_ctx, "a red house <lyco:ink:1>"))  # LDM block names, in a subfolder
    both = pixels(generate(lora_ctx, "a red house <lora:film:1> <lora:ink:1>"))
    te_only = pixels(generate(lora_ctx, "a red house <lora:film:1:0>"))
    unet_only = pixels(generate(lora_ctx, "a red house <lora:film:te=0:unet=1>"))
    by_alias = pixels(generate(lora_ctx, "a red house <lora:film_grain:1>"))  # ss_output_name
    for image in (film, ink, both, te_only, unet_only):
        assert not np.array_equal(image, base)
    assert not np.array_equal(both, film) and not np.array_equal(both, ink)
    assert not np.array_equal(te_only, unet_only) and not np.array_equal(te_only, film)
    assert np.array_equal(by_alias, film)


def test_infotext_keeps_the_tag_and_writes_a1111_lora_hashes(lora_ctx):
    result = generate(lora_ctx, "a red house <lora:film:0.7>")
    parsed = parse_infotext(result.infotexts[0])
    assert parsed["Prompt"] == "a red house <lora:film:0.7>"
    path = lora_ctx.flags.lora_dir + "/film.safetensors"
    data = open(path, "rb").read()
    (length,) = struct.unpack("<Q", data[:8])
    assert parsed["Lora hashes"] == f"film: {hashlib.sha256(data[8 + length:]).hexdigest()[:12]}"
    assert '"film: ' in result.infotexts[0]  # quoted, as A1111 writes it


def test_a_second_generation_does_not_reload_and_a_new_weight_costs_milliseconds(lora_ctx):
    generate(lora_ctx, "a red house <lora:film:0.8>")
    provider = network(lora_ctx)
    cache = provider.cache_for(lora_ctx.pipelines.current.pipe)
    loads, reads = cache.loads, provider.library.hash_reads
    generate(lora_ctx, "a red house <lora:film:0.8>")
    generate(lora_ctx, "a red house <lora:film:0.3>")
    assert (cache.loads, provider.library.hash_reads) == (loads, reads)
    from modules.extensions.hooks import GenerationInfo
    from modules.prompts.extra_networks import parse_prompt

    pipe = lora_ctx.pipelines.current.pipe
    timings = []
    for weight in (0.2, 0.9, 0.4, 0.6, 0.1):
        info = GenerationInfo(REQUEST)
        calls = parse_prompt(f"<lora:film:{weight}>")[1]["lora"]
        started = time.perf_counter()
        with provider.activate(pipe, calls, info):
            pass
        timings.append(time.perf_counter() - started)
    assert sorted(timings)[len(timings) // 2] < 0.05, timings


def test_bad_input_is_a_warning_and_the_image_is_made_without_it(lora_ctx, base):
    cases = {"broken": "cannot load broken.safetensors", "xl": "xl is a LoRA for SDXL, the loaded model is "
             "SD 1.x; skipped", "nosuch": "LoRA not found: nosuch; skipped"}
    for name, warning in cases.items():
        result = generate(lora_ctx, f"a red house <lora:{name}:1>")
        assert np.array_equal(pixels(result), base), name
        assert any(warning in w for w in result.warnings), (name, result.warnings)


def test_tags_work_in_hires_and_img2img(lora_ctx):
    hires = dict(enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", denoising_strength=0.5)
    base = pixels(generate(lora_ctx, "a red house", **hires))
    tagged = pixels(generate(lora_ctx, "a red house <lora:film:1>", **hires))
    assert base.shape[:2] == (96, 96) and not np.array_equal(tagged, base)
    from PIL import Image

    init = Image.new("RGB", (64, 64), (200, 40, 40))
    img2img = dict(mode="img2img", init_images=(init,), denoising_strength=0.6)
    base = pixels(generate(lora_ctx, "a red house", **img2img))
    tagged = pixels(generate(lora_ctx, "a red house <lora:film:1>", **img2img))
    assert not np.array_equal(tagged, base)
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    inpaint = dict(img2img, mask=mask)
    base = pixels(generate(lora_ctx, "a red house", **inpaint))
    tagged = pixels(generate(lora_ctx, "a red house <lora:film:1>", **inpaint))
    assert not np.array_equal(tagged, base)


def test_each_batch_activates_its_own_tags_as_prompt_sr_does(lora_ctx, base, film):
    """X/Y/Z "Prompt S/R" over a LoRA weight gives per-batch prompts: each batch gets its own weight."""
    prompts = ("a red house <lora:film:1>", "a red house <lora:film:0>", "a red house")
    result = generate(lora_ctx, prompts[0], n_iter=3, all_prompts=prompts, all_seeds=(7, 7, 7))
    assert np.array_equal(pixels(result, 0), film) and np.array_equal(pixels(result, 1), base)
    assert np.array_equal(pixels(result, 2), base)
    hashes = [parse_infotext(text).get("Lora hashes") for text in result.infotexts]
    assert hashes[0] and hashes[0] == hashes[1] and hashes[2] is None  # no stale hashes on the tagless one


def test_the_api_list_has_a1111s_shape(lora_ctx):
    listed = {entry["name"]: entry for entry in network(lora_ctx).api_list()}
    assert {"film", "ink", "xl", "broken"} <= set(listed)
    assert listed["film"]["alias"] == "film_grain" and listed["ink"]["alias"] == "ink"
    assert listed["film"]["metadata"]["ss_tag_frequency"] == {"set": {"red house": 3}}
    json.dumps(listed)  # what the route answers must be JSON


def test_loha_and_lokr_from_the_lycoris_folder_weigh_like_a_lora(lora_ctx, base):
    full = pixels(generate(lora_ctx, "a red house <lyco:hada:1>"))
    half = pixels(generate(lora_ctx, "a red house <lora:hada:0.5>"))
    again = pixels(generate(lora_ctx, "a red house <lyco:hada:1>"))  # the cached adapter, weight back to 1
    assert np.array_equal(again, full)
    d_half, d_full = (np.abs(image - base).mean() for image in (half, full))
    assert 0 < d_half < d_full
    kron = pixels(generate(lora_ctx, "a red house <lora:kron:1>"))
    assert not np.array_equal(kron, base) and not np.array_equal(kron, full)
    zero = generate(lora_ctx, "a red house <lora:kron:0>")
    assert np.array_equal(pixels(zero), base)
    assert "kron: " in parse_infotext(zero.infotexts[0])["Lora hashes"]
    result = generate(lora_ctx, "a red house <lora:oft:1>")
    assert np.array_equal(pixels(result), base)
    assert any("oft is a LyCORIS OFT file, which this engine does not apply; skipped" in w for w in result.warnings)
