"""The training script end to end at toy sizes: it writes a checkpoint our own loader reads back exactly,
with the demo metadata, its config folder and the training record, and the file draws at 64 px."""
from __future__ import annotations

import json

import pytest
import torch

from modules.pipelines.ldm_layout import export_ldm_state_dict
from modules.pipelines.loading import read_state_dict
from tools.demo_model import architecture as arch
from tools.demo_model.evaluate import load
from tools.demo_model.train import DEMO_METADATA, TrainConfig, run

TOY = arch.Sizes(vae_channels=(8, 8, 8, 8), vae_groups=1, unet_channels=(16, 16, 16), unet_heads=2,
                 unet_groups=8, text_width=32, text_layers=1, text_heads=2)


def toy_config(out, **changes) -> TrainConfig:
    base = dict(out=out, threads=1, sizes=TOY, vae_images=4, vae_steps=2, vae_batch=2, images=4, steps=3,
                batch=2, warmup=1, log_every=1, save_dtype="fp32", finetune_steps=2, finetune_warmup=1,
                decoder_steps=0)
    return TrainConfig(**(base | changes))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return run(toy_config(tmp_path_factory.mktemp("demo") / "demo-shapes.safetensors"))


def test_the_file_loads_through_our_loader_with_every_weight_as_saved(trained):
    from safetensors import safe_open

    with safe_open(str(trained), framework="pt") as f:
        assert f.metadata() == DEMO_METADATA
    model = load(trained)
    assert model.architecture == "sd15"
    assert model.pipe.unet.config.block_out_channels == list(TOY.unet_channels)
    saved, reloaded = read_state_dict(trained), export_ldm_state_dict(model.pipe)
    assert saved.keys() == reloaded.keys()
    assert all(torch.equal(saved[k], reloaded[k]) for k in saved)
    # the scaling factor measured in stage 1 travels in the config folder next to the file
    record = json.loads(trained.with_name("demo-shapes.train.json").read_text())
    assert model.pipe.vae.config.scaling_factor == pytest.approx(record["scaling_factor"])
    assert [p[0] for p in record["loss_curves"]["unet"]] == [1, 2, 3]
    assert [p[0] for p in record["loss_curves"]["finetune"]] == [1, 2]  # stage 3, partial captions
    assert 0 < record["loss_curves"]["vae_reconstruction_mse"][0][1] < 4  # pixels in [-1, 1]


def test_unused_token_embeddings_stay_zero_so_unknown_words_add_nothing(trained):
    model = load(trained)
    emb = model.pipe.text_encoder.get_input_embeddings().weight
    dog = model.pipe.tokenizer("dog").input_ids[1]  # never in a caption
    red = model.pipe.tokenizer("red").input_ids[1]
    assert torch.count_nonzero(emb[dog]) == 0 and torch.count_nonzero(emb[red]) > 0


def test_the_trained_file_generates_at_64_pixels_with_our_generation_path(trained):
    from modules.generation.txt2img import generate_txt2img
    from modules.types import GenerationRequest

    request = GenerationRequest(prompt="a (red:1.3) circle AND a [blue:green:0.5] square", width=64,
                                height=64, steps=2, sampler_name="Euler", seed=1)
    image = generate_txt2img(load(trained), request).images[0]
    assert image.size == (64, 64)


@pytest.mark.slow
def test_the_same_config_trains_the_same_bytes(tmp_path, trained):
    again = run(toy_config(tmp_path / "demo-shapes.safetensors"))
    assert again.read_bytes() == trained.read_bytes()


def test_the_checkpoint_folder_lists_only_the_checkpoint_not_the_stage_1_vae_or_config(trained):
    from modules.pipelines.registry import _walk

    work = trained.parent / ".demo-shapes.work"
    assert (work / "vae").is_dir()  # kept for --vae-from
    assert (work / "reconstruction_64.png").is_file() and (work / "reconstruction_128.png").is_file()
    assert list(_walk(trained.parent)) == [(trained, False)]


def test_init_from_a_stage_2_file_fine_tunes_to_the_same_bytes_as_the_one_command_run(tmp_path, trained):
    """The shipped model was fine-tuned from a saved stage-2 file (`--init-from`); the one command must
    rebuild exactly that, or its record would not describe the file."""
    stage2 = run(toy_config(tmp_path / "a" / "demo-shapes.safetensors", finetune_steps=0))
    assert stage2.read_bytes() != trained.read_bytes()  # stage 3 changed the weights
    resumed = run(toy_config(tmp_path / "b" / "demo-shapes.safetensors", init_from=stage2))
    record = json.loads(resumed.with_name("demo-shapes.train.json").read_text())
    assert set(record["loss_curves"]) == {"data", "finetune"}  # neither stage 1 nor 2 ran again
    assert resumed.read_bytes() == trained.read_bytes()


def test_stage_4_trains_the_decoder_only_so_the_latents_the_unet_learnt_stay(trained, tmp_path):
    out = tmp_path / "demo-shapes.safetensors"
    run(toy_config(out, init_from=trained, finetune_steps=0, decoder_steps=3, vae_batch=2))
    before, after = read_state_dict(trained), read_state_dict(out)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("first_stage_model.decoder.", "first_stage_model.post_quant_conv."))
                           for k in changed), sorted(changed)[:5]
    record = json.loads(out.with_name("demo-shapes.train.json").read_text())
    assert [p[0] for p in record["loss_curves"]["decoder"]] == [1, 2, 3]


def test_twin_batches_pair_each_one_shape_scene_with_its_twin_under_the_same_noise(tmp_path):
    from diffusers import DDPMScheduler

    from tools.demo_model.dataset import make_dataset, shape_twin
    from tools.demo_model.train import Log, encode_latents, prepare_data, to_tensor, twin_batch

    cfg = toy_config(tmp_path / "demo-shapes.safetensors", images=16, images_128=8, batch=6, twin_share=1.0,
                     caption_dropout=0.0)
    torch.manual_seed(0)
    vae = arch.build_vae(TOY).eval()
    data = prepare_data(cfg, vae, Log())
    samples = make_dataset(cfg.seed, 16, 64)
    singles = [s.index for s in samples if len(s.shapes) == 1]
    assert len(singles) >= 3 and data.twins.scenes.tolist() == singles
    assert data.twins.count == {64: len(singles), 128: sum(i < 8 for i in singles)}
    # row k is the encoded twin picture of scene scenes[k]
    expected = encode_latents(vae, to_tensor([shape_twin(samples[singles[0]]).image]))
    assert torch.allclose(data.twins.latents[64][0], expected[0], atol=1e-5)

    torch.manual_seed(1)
    x0, cond, weights, eps, t, cells = twin_batch(cfg, data, 64, DDPMScheduler.from_config(arch.scheduler_config()))
    assert torch.equal(eps[:3], eps[3:]) and torch.equal(t[:3], t[3:])
    assert not torch.equal(x0[:3], x0[3:])
    # each scene's caption and its twin's differ in one token: the shape word
    assert (cond[:3] != cond[3:]).sum(dim=1).tolist() == [1, 1, 1]
    assert torch.all(weights == 1.0) and cells.shape == (6, 1, 8, 8)


def test_a_run_with_twin_batches_trains_and_saves(tmp_path):
    out = run(toy_config(tmp_path / "demo-shapes.safetensors", images=16, images_128=8, twin_share=1.0,
                         finetune_steps=0))
    record = json.loads(out.with_name("demo-shapes.train.json").read_text())
    assert record["config"]["twin_share"] == 1.0 and len(record["loss_curves"]["unet"]) == 3
