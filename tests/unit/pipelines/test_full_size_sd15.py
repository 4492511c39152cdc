"""A full-size SD 1.5 single file (real key layout and shapes, random weights, as A1111's CI does) dropped
into models/Stable-diffusion loads offline with the bundled configs/sd15 and generates 64x64."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from safetensors.torch import save_file

from modules.devices import DeviceFlags, DeviceInfo, choose_policy
from modules.paths import CONFIGS_DIR, Paths
from modules.pipelines.ldm_layout import export_ldm_state_dict
from modules.pipelines.manager import PipelineManager
from modules.pipelines.registry import CheckpointRegistry
from tests.fixtures.full_size import meta_pipeline_parts


def random_full_size_sd15() -> dict[str, torch.Tensor]:
    parts = meta_pipeline_parts(CONFIGS_DIR / "sd15")
    gen = torch.Generator().manual_seed(0)
    for module in (parts.unet, parts.vae, parts.text_encoder):
        module.to_empty(device="cpu")
        with torch.no_grad():
            for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
                if tensor.is_floating_point():
                    # small weights keep activations finite; norm scales at 1 as trained models have them
                    tensor.copy_(torch.ones_like(tensor) if "norm" in name and name.endswith("weight")
                                 else torch.randn(tensor.shape, generator=gen) * 0.02)
                else:  # position ids
                    tensor.copy_(torch.arange(tensor.shape[-1]).expand_as(tensor))
    sd = export_ldm_state_dict(SimpleNamespace(unet=parts.unet, vae=parts.vae, text_encoder=parts.text_encoder,
                                               text_encoder_2=None), dtype=torch.float16)
    del parts
    return sd


def test_full_size_sd15_loads_with_the_bundled_config_and_generates(tmp_path, no_network):
    paths = Paths.from_dirs(tmp_path)
    paths.ensure_writable()
    save_file(random_full_size_sd15(), str(paths.ckpt_dirs[0] / "v1-5-random.safetensors"))

    registry = CheckpointRegistry(paths)
    (info,) = registry.list()
    manager = PipelineManager(lambda family: choose_policy(DeviceInfo(), DeviceFlags(), family))
    loaded = manager.load(info)
    assert loaded.architecture == "sd15"
    assert loaded.pipe.unet.config.cross_attention_dim == 768 and loaded.pipe.unet.config.in_channels == 4
    image = loaded.pipe("a photo of a cat", num_inference_steps=1, height=64, width=64,
                        generator=torch.Generator().manual_seed(0), output_type="np").images[0]
    assert image.shape == (64, 64, 3) and np.isfinite(image).all()
    manager.unload()
