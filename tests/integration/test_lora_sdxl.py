"""LoRA on a tiny SDXL single file in a real AppContext: an SDXL kohya LoRA (LDM names, te1/te2) applies,
an SD 1.x LoRA is a warning, and the refiner (another model) runs with a base LoRA active."""
from __future__ import annotations

import numpy as np
import pytest

from modules.context import build_context, load_initial_model
from modules.flags import parse_flags
from modules.generation.service import submit_generation
from modules.types import GenerationRequest
from tests.fixtures.loras import kohya_lora, write_lora
from tests.integration.conftest import ROOT, WAIT

REQUEST = GenerationRequest(prompt="a red house", seed=7, width=64, height=64, steps=2, save_images=False)


@pytest.fixture(scope="module")
def xl_ctx(tmp_path_factory, tiny_sdxl_checkpoint, tiny_sdxl_refiner_checkpoint, tiny_sdxl_pipe, tiny_sd15_pipe):
    root = tmp_path_factory.mktemp("lora-xl")
    write_lora(root / "Lora" / "xl.safetensors", kohya_lora(tiny_sdxl_pipe, seed=4, strength=0.3, ldm=True))
    write_lora(root / "Lora" / "sd1.safetensors", kohya_lora(tiny_sd15_pipe, seed=5, te=False))
    flags = parse_flags(["--data-dir", str(root / "data"), "--ckpt-dir", str(tiny_sdxl_checkpoint.path.parent),
                         "--ckpt", str(tiny_sdxl_checkpoint.path), "--no-download-sd-model",
                         "--lora-dir", str(root / "Lora")], environ={}, project_root=ROOT)
    ctx = build_context(flags, ROOT)
    load_initial_model(ctx)
    assert ctx.model_error is None
    yield ctx
    ctx.close()


def generate(ctx, prompt: str, **changes):
    job = submit_generation(ctx, REQUEST.with_changes(prompt=prompt, **changes))
    result = job.wait_result(WAIT)
    assert job.state == "done", job.error
    return result, np.asarray(result.images[0]).astype(np.int16)


# ~30 s on the shared 2-core box (an SDXL context and a refiner load); the default run keeps the reduced form:
# tests/unit/lora/test_engine.py (SDXL LDM names, te1/te2 vs a hand merge) and the SDXL-on-SD1 warning in
# tests/integration/test_lora.py.
@pytest.mark.slow
def test_sdxl_lora_applies_an_sd1_lora_is_skipped_and_the_refiner_runs(xl_ctx):
    _, base = generate(xl_ctx, "a red house")
    _, zero = generate(xl_ctx, "a red house <lora:xl:0>")
    _, tagged = generate(xl_ctx, "a red house <lora:xl:1>")
    assert np.array_equal(zero, base) and not np.array_equal(tagged, base)
    result, skipped = generate(xl_ctx, "a red house <lora:sd1:1>")
    assert np.array_equal(skipped, base)
    assert any(w.startswith("sd1 ") and "skipped" in w for w in result.warnings), result.warnings
    refiner = dict(refiner_checkpoint="tiny-sdxl-refiner", refiner_switch_at=0.5)
    plain, refined_base = generate(xl_ctx, "a red house", **refiner)
    refined, refined_tagged = generate(xl_ctx, "a red house <lora:xl:1>", **refiner)
    assert "Refiner: " in refined.infotexts[0] and "Lora hashes: " in refined.infotexts[0]
    assert not np.array_equal(refined_tagged, refined_base)  # the base's share ran with the LoRA
    assert not [w for w in refined.warnings if "xl" in w]
