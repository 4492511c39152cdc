"""Exporting diffusers pipelines to the A1111 single-file layout, checked against diffusers' own loader."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import (
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLPipeline,
)
from diffusers.loaders import single_file_utils as sfu
from PIL import Image

from modules.paths import CONFIGS_DIR
from modules.pipelines.ldm_layout import (
    export_ldm_state_dict,
    open_clip_to_ldm,
    save_ldm_checkpoint,
    unet_to_ldm,
)
from tests.fixtures.full_size import meta_pipeline_parts
from tests.fixtures.tiny_models import (
    build_tiny_inpaint_pipeline,
    build_tiny_sd15_pipeline,
    build_tiny_sdxl_pipeline,
    build_tiny_sdxl_refiner_pipeline,
    write_config_folder,
)

CASES = {
    "sd15": (build_tiny_sd15_pipeline, StableDiffusionPipeline),
    "sdxl": (build_tiny_sdxl_pipeline, StableDiffusionXLPipeline),
    "inpaint": (build_tiny_inpaint_pipeline, StableDiffusionInpaintPipeline),
    "refiner": (build_tiny_sdxl_refiner_pipeline, StableDiffusionXLImg2ImgPipeline),
}
COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")


def _generate(pipe, kind: str) -> np.ndarray:
    args = {"prompt": "a photo of a cat", "num_inference_steps": 2, "height": 64, "width": 64,
            "output_type": "np", "generator": torch.Generator().manual_seed(42)}
    image = Image.fromarray(np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3))
    if kind == "inpaint":
        mask = Image.new("L", (64, 64), 0)
        mask.paste(255, (16, 16, 48, 48))
        args |= {"image": image, "mask_image": mask}
    elif kind == "refiner":
        args |= {"image": image, "strength": 1.0}
    return pipe(**args).images


@pytest.mark.parametrize("kind", sorted(CASES))
def test_export_round_trips_through_from_single_file(kind, tmp_path, no_network):
    build, cls = CASES[kind]
    original = build(seed=3)
    path = save_ldm_checkpoint(original, tmp_path / f"{kind}.safetensors")
    config_dir = write_config_folder(original, tmp_path / f"{kind}-config")
    loaded = cls.from_single_file(str(path), config=str(config_dir), local_files_only=True)
    loaded.set_progress_bar_config(disable=True)
    for name in COMPONENTS:
        if getattr(original, name, None) is None:
            continue
        a, b = getattr(original, name).state_dict(), getattr(loaded, name).state_dict()
        assert a.keys() == b.keys(), name
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert np.array_equal(_generate(original, kind), _generate(loaded, kind))


def test_ldm_names_follow_a1111(tiny_sd15_pipe):
    sd = export_ldm_state_dict(tiny_sd15_pipe)
    # tiny UNet: DownBlock2D then CrossAttnDownBlock2D, 2 layers per level
    for key in ("model.diffusion_model.input_blocks.3.0.op.weight",
                "model.diffusion_model.input_blocks.4.1.proj_in.weight",
                "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight",
                "model.diffusion_model.output_blocks.2.2.conv.weight",
                "model.diffusion_model.output_blocks.3.0.skip_connection.weight",
                "model.diffusion_model.time_embed.2.bias", "model.diffusion_model.out.2.weight",
                "first_stage_model.decoder.up.1.block.1.conv1.weight",
                "first_stage_model.encoder.down.0.downsample.conv.weight",
                "cond_stage_model.transformer.text_model.final_layer_norm.weight"):
        assert key in sd, key
    assert sd["first_stage_model.encoder.mid.attn_1.q.weight"].ndim == 4


def test_sdxl_text_encoders_use_open_clip_names():
    pipe = build_tiny_sdxl_pipeline()
    sd = open_clip_to_ldm(pipe.text_encoder_2, with_projection=True)
    hidden = pipe.text_encoder_2.config.hidden_size
    assert sd["transformer.resblocks.0.attn.in_proj_weight"].shape == (3 * hidden, hidden)
    assert torch.equal(sd["text_projection"], pipe.text_encoder_2.text_projection.weight.T)
    assert "label_emb.0.0.weight" in unet_to_ldm(pipe.unet)


ARCH_TYPES = {"sd15": "v1", "sd15-inpaint": "inpainting", "sd2": "v2", "sd2-v": "v2",
              "sd2-inpaint": "inpainting_v2", "sdxl-base": "xl_base", "sdxl-inpaint": "xl_inpaint",
              "sdxl-refiner": "xl_refiner"}


def _shapes(sd) -> dict[str, tuple[int, ...]]:
    return {k.removeprefix("text_model."): tuple(v.shape) for k, v in sd.items()}


@pytest.mark.parametrize("arch", sorted(ARCH_TYPES))
def test_full_size_layout_matches_diffusers_converter(arch):
    """Full-size models on the meta device: diffusers' LDM converter must give back every name and shape."""
    parts = meta_pipeline_parts(CONFIGS_DIR / arch)
    ldm = export_ldm_state_dict(parts)
    assert sfu.infer_diffusers_model_type(ldm) == ARCH_TYPES[arch]
    unet, vae = parts.unet, parts.vae
    assert _shapes(sfu.convert_ldm_unet_checkpoint(ldm, dict(unet.config))) == _shapes(unet.state_dict())
    assert _shapes(sfu.convert_ldm_vae_checkpoint(ldm, dict(vae.config))) == _shapes(vae.state_dict())
    te, te2 = parts.text_encoder, parts.text_encoder_2
    if te2 is not None:
        prefix = "conditioner.embedders.1.model." if te is not None else "conditioner.embedders.0.model."
        assert _shapes(sfu.convert_open_clip_checkpoint(te2, ldm, prefix=prefix)) == _shapes(te2.state_dict())
    if te is not None and te.config.hidden_act == "gelu":  # SD2's OpenCLIP ViT-H
        back = sfu.convert_open_clip_checkpoint(te, ldm, prefix="cond_stage_model.model.")
        assert _shapes(back) == _shapes(te.state_dict())
    elif te is not None:  # OpenAI CLIP ViT-L (SD1, SDXL's first encoder)
        assert _shapes(sfu.convert_ldm_clip_checkpoint(ldm)) == _shapes(te.state_dict())
