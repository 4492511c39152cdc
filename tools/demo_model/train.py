"""Train the demo model on the procedural shapes dataset and save it as an A1111 single-file checkpoint.

One command rebuilds the dataset (from its seed, in memory) and trains both stages:

    nice -n 19 venv/bin/python -m tools.demo_model.train --out models/Stable-diffusion/demo-shapes.safetensors

Stage 1 trains the tiny AutoencoderKL (pixel MSE + L1, KL weight 1e-6, like SD's VAE) and measures the
latent scaling factor; stage 2 trains UNet and CLIP text encoder together on frozen latents with DDPM noise
and the epsilon loss (AdamW, cosine LR with warm-up, diffusers' EMAModel, 10% empty captions for CFG),
alternating 64 and 128 px batches so both sizes draw. Same seed and thread count: same weights.
Writes `<out>`, its `<stem>.config/` folder (what our loader reads it with) and `<stem>.train.json`.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tools.demo_model import architecture as arch
from tools.demo_model.dataset import make_dataset, partial_caption, shape_twin
from tools.demo_model.emphasis import (eligible, emphasise, encode_ids_and_weights, fix_final_norm_shift,
                                       weighted_caption)
from tools.demo_model.vae_init import init_colour_path, keep_constant_unread

DEMO_NAME = "demo-shapes"
# the single metadata key (safetensors writes several in a random order, changing the file's bytes)
DEMO_METADATA = {"webui_demo": DEMO_NAME}


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of one run; steps are optimiser steps, learning rates per step."""

    out: Path
    seed: int = 0
    threads: int = 2
    sizes: arch.Sizes = field(default_factory=arch.Sizes)
    vae_images: int = 2000
    vae_steps: int = 1000
    vae_batch: int = 8
    vae_lr: float = 5e-4  # 1e-3 and up knock the colour-path start about (loss spikes) before it helps
    vae_warmup: int = 100
    # weight of an MSE on 8x8 average-pooled colours: the flat-colour signal the pixel loss learns slowly
    vae_pool_loss: float = 1.0
    vae_colour_init: bool = True  # start with latents = pooled RGB (tools/demo_model/vae_init.py)
    images: int = 6000  # dataset scenes, each encoded at 64 px
    images_128: int = 3000  # the first this many also at 128 px (encoding at 128 px is 5x the cost)
    steps: int = 7000  # r16; 4500 until r13 (r16's twin batches take 35% of them)
    batch: int = 16
    lr: float = 1e-3
    warmup: int = 200
    # Min-SNR-gamma loss weights (Hang et al. 2023, diffusers' compute_snr): the nearly clean timesteps
    # stop dominating the gradient, so layout and colour (decided at high noise) are learnt sooner
    min_snr_gamma: float = 5.0
    # an eligible scene (large and small shapes) uses its emphasis caption this often (emphasis.py); 0.5
    # until r12, whose partial captions then made prompt weights go the wrong way (r13: 0.9, 10/10)
    emphasis_share: float = 0.9
    ema_decay: float = 0.999
    caption_dropout: float = 0.1
    share_128: float = 0.3  # fraction of batches at 128 px (2.2x the cost of one at 64 px)
    save_dtype: str = "fp16"
    log_every: int = 50
    vae_from: Path | None = None  # a stage-1 result (vae/ folder) to reuse instead of training one
    vae_only: bool = False  # stop after stage 1 (tuning the VAE: look at <work>/reconstruction_*.png)
    budget_s: float = 0.0  # > 0: stop stage 2 early after this many seconds of the run (and still save)
    # Stage 3 continues stage 2 with partial captions (dataset.partial_caption): a several-shape scene is
    # captioned by one of its shapes this often, which is what makes `AND` compose instead of cancel.
    # r18: 2000 (r16's weights, twin-heavy and mostly 64 px: round vs square at 64 px 4 -> 9/10). Off until
    # then: on r6 it traded the other checks for AND (docs/demo_model.md)
    finetune_steps: int = 2000
    finetune_lr: float = 3e-4
    finetune_warmup: int = 50
    partial_share: float = 0.25  # r18, as stage 2 (r7-r11: 0.2-0.35)
    # Partial captions already in stage 2 (r12, r13; r6 had none): what makes `AND` compose. A fine-tune
    # that added them late cost prompt weights at 128 px (r9-r11).
    stage2_partial_share: float = 0.25
    init_from: Path | None = None  # a saved demo checkpoint: skip stages 1-2 and fine-tune its weights
    # Stage 4 trains the VAE decoder alone on the frozen encoder's latents: sharper edges (stage 1 leaves
    # circles and squares as soft 8x8 blocks) without moving a latent, so the denoiser needs no retraining.
    decoder_steps: int = 2000
    decoder_lr: float = 3e-4
    # > 0: the denoising loss of latent cells on a shape's outline weighs 1 + this x the cell's edge share
    # (edge_weights). Colour fills most of the loss and every run learnt it; circle vs square lives in
    # the few outline cells and stayed at chance (r6-r12), so this gives the outline a louder voice.
    edge_loss_weight: float = 4.0
    # The text encoder's learning rate as a share of the UNet's. At 1 (r6-r13) it learnt to map the shape
    # words onto nearly one vector (docs/demo_model.md, r13); a slower encoder stays nearer its random start,
    # where every word is its own direction. r16: 0.2.
    text_lr_scale: float = 0.2
    # This share of stage-2 batches are twin pairs (dataset.shape_twin): half the batch one-shape scenes, the
    # other half the same scenes with another shape, under the same noise and timestep. With text encoders
    # that kept the shape words apart (r14) the UNet still drew one blob for both, the outline cells' signal
    # lost in the noise of everything else in the batch; in a pair everything else is the same. r16: 0.35
    # (round vs square 9/10 at 128 px, 3/10 before).
    twin_share: float = 0.35
    # Stage 3's own mix of 128 px and twin batches. r17 (a stage 3 of r16 at 64 px only, twins 0.6) drew
    # circles rounder than squares on 10/10 seeds at 64 px, and lost 128 px (9 -> 6/10); r18's 0.2 and 0.6
    # keep both (9/10 each).
    finetune_share_128: float = 0.2
    finetune_twin_share: float = 0.6

    @property
    def work(self) -> Path:
        # hidden: the checkpoint registry skips dot-folders, so the stage-1 VAE is not listed as a model
        return self.out.with_name(f".{self.out.stem}.work")


class Log:
    """Prints progress lines and keeps the loss curve (step, loss) per stage for the record."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.curves: dict[str, list[tuple[int, float]]] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def point(self, stage: str, step: int, loss: float, extra: str = "") -> None:
        self.curves.setdefault(stage, []).append((step, round(loss, 5)))
        print(f"[{self.elapsed():7.1f} s] {stage} step {step:6d} loss {loss:.5f} {extra}", flush=True)


def to_tensor(images) -> torch.Tensor:
    """PIL RGB images -> float tensor N x 3 x H x W in [-1, 1]."""
    array = np.stack([np.asarray(im, dtype=np.uint8) for im in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


# ---- stage 1: the autoencoder ---------------------------------------------------------------------

def vae_pictures(cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(128 px, 64 px) pictures of dataset seed + 1, the autoencoder's own (stages 1 and 4)."""
    big = to_tensor(s.image for s in make_dataset(cfg.seed + 1, cfg.vae_images, 128))
    small = to_tensor(s.image for s in make_dataset(cfg.seed + 1, cfg.vae_images, 64))
    return big, small


def pixel_loss(cfg: TrainConfig, rec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """MSE + 0.5 L1, plus the pooled-colour MSE (`vae_pool_loss`); stage 1 adds its KL term."""
    loss = F.mse_loss(rec, x) + 0.5 * F.l1_loss(rec, x)
    if cfg.vae_pool_loss:
        loss = loss + cfg.vae_pool_loss * F.mse_loss(F.avg_pool2d(rec, 8), F.avg_pool2d(x, 8))
    return loss


@torch.no_grad()
def latent_means(vae, images: torch.Tensor) -> torch.Tensor:
    """The encoder's latent means (unscaled), 64 pictures at a time."""
    return torch.cat([vae.encode(images[i:i + 64]).latent_dist.mean for i in range(0, len(images), 64)])


def train_vae(cfg: TrainConfig, log: Log):
    """AutoencoderKL trained on 64 px crops of 128 px pictures and on native 64 px ones (dataset seed + 1).

    It is fully convolutional: 64 px crops teach it 128 px edges at a quarter of the cost.
    """
    vae = arch.build_vae(cfg.sizes).train()
    big, small = vae_pictures(cfg)
    hooks = []
    if cfg.vae_colour_init:
        init_colour_path(vae, small[:16])
        hooks = keep_constant_unread(vae)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=1e-4)
    from diffusers.optimization import get_scheduler

    sched = get_scheduler("cosine", opt, num_warmup_steps=min(cfg.vae_warmup, cfg.vae_steps // 10),
                          num_training_steps=cfg.vae_steps)
    running, t0, c0 = None, time.perf_counter(), time.process_time()
    for step in range(1, cfg.vae_steps + 1):
        # alternate scales: the decoder must draw the edges of both sizes
        pick = torch.randint(len(big), (cfg.vae_batch,))
        if step % 2:
            top, left = torch.randint(0, 65, (2,)).tolist()
            x = big[pick, :, top:top + 64, left:left + 64]
        else:
            x = small[pick]
        posterior = vae.encode(x).latent_dist
        # A fresh encoder's log-variance is ~0: sampled latents are almost pure noise and the decoder learns
        # nothing for hundreds of steps (loss stuck near the mean colour). Decode the mean first, then sample.
        z = posterior.mean if step <= cfg.vae_steps // 3 else posterior.sample()
        rec = vae.decode(z).sample
        loss = pixel_loss(cfg, rec, x) + 1e-6 * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % cfg.log_every == 0 or step == cfg.vae_steps:
            log.point("vae", step, running, f"{step / (time.perf_counter() - t0):.2f} steps/s, "
                      f"{(time.process_time() - c0) / step:.2f} cpu s/step")
    for handle in hooks:
        handle.remove()
    vae.eval()
    # SD's convention: scale latents to unit variance for the UNet
    scaling = float(1.0 / latent_means(vae, big[:256]).std())
    vae.register_to_config(scaling_factor=round(scaling, 5))
    return vae


@torch.no_grad()
def report_reconstruction(cfg: TrainConfig, vae, log: Log) -> float:
    """Reconstruction MSE (pixels in [-1, 1]) of unseen pictures at 64 and 128 px; a strip of originals
    over reconstructions goes to <work>/reconstruction_<side>.png. Stage 2 cannot beat this VAE."""
    from PIL import Image

    mse = {}
    for side in (64, 128):
        x = to_tensor(s.image for s in make_dataset(cfg.seed + 2, 8, side))  # a seed neither stage trains on
        rec = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
        mse[side] = float(F.mse_loss(rec, x))
        strip = torch.cat([torch.cat(list(x), 2), torch.cat(list(rec), 2)], 1)  # 3 x 2side x 8side
        pixels = strip.add(1).mul(127.5).round().byte().permute(1, 2, 0).numpy()
        cfg.work.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(cfg.work / f"reconstruction_{side}.png")
    log.point("vae_reconstruction_mse", 0, mse[64], f"64 px {mse[64]:.4f}, 128 px {mse[128]:.4f}")
    return mse[64]


def train_decoder(cfg: TrainConfig, vae, log: Log):
    """Stage 4: the decoder (and post_quant_conv) trained on latents of the frozen encoder, same loss as
    stage 1 without the KL term. 64 px crops of 128 px pictures come from 8x8 crops of their 16x16 latents
    (the encoder is run once per picture), alternating with native 64 px pictures, as in stage 1."""
    from diffusers.optimization import get_scheduler

    big, small = vae_pictures(cfg)
    vae.eval().requires_grad_(False)
    z_big, z_small = latent_means(vae, big), latent_means(vae, small)
    trained = [vae.decoder] + ([vae.post_quant_conv] if vae.post_quant_conv is not None else [])
    params = [p for m in trained for p in m.parameters()]
    for p in params:
        p.requires_grad_(True)
    vae.decoder.train()
    hooks = keep_constant_unread(vae) if cfg.vae_colour_init else []
    opt = torch.optim.AdamW(params, lr=cfg.decoder_lr, weight_decay=1e-4)
    sched = get_scheduler("cosine", opt, num_warmup_steps=min(50, cfg.decoder_steps // 10),
                          num_training_steps=cfg.decoder_steps)
    running, t0 = None, time.perf_counter()
    for step in range(1, cfg.decoder_steps + 1):
        pick = torch.randint(len(big), (cfg.vae_batch,))
        if step % 2:
            top, left = torch.randint(0, 9, (2,)).tolist()
            z = z_big[pick, :, top:top + 8, left:left + 8]
            x = big[pick, :, 8 * top:8 * top + 64, 8 * left:8 * left + 64]
        else:
            z, x = z_small[pick], small[pick]
        loss = pixel_loss(cfg, vae.decode(z).sample, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % cfg.log_every == 0 or step == cfg.decoder_steps:
            log.point("decoder", step, running, f"{step / (time.perf_counter() - t0):.2f} steps/s")
    for handle in hooks:
        handle.remove()
    vae.requires_grad_(False)
    return vae.eval()


# ---- stage 2: UNet + text encoder -------------------------------------------------------------------

@torch.no_grad()
def encode_latents(vae, images: torch.Tensor) -> torch.Tensor:
    return latent_means(vae, images) * vae.config.scaling_factor


def caption_ids(tokenizer, captions: list[str]) -> torch.Tensor:
    return tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


class CompactEmbedding(torch.nn.Module):
    """The token embedding of only the words the captions use, looked up through a vocabulary-sized map.

    The full table is 49408 x width (6.3 M parameters, most of the model): training it densely costs a
    zero gradient, an AdamW and an EMA update per row per step for rows that never change. Training these
    few rows and writing them back (`scatter_into`) gives the same model for ~15% less time per step.
    """

    def __init__(self, full: torch.nn.Embedding, used_ids: list[int]) -> None:
        super().__init__()
        index = torch.zeros(full.num_embeddings, dtype=torch.long)
        index[used_ids] = torch.arange(len(used_ids))
        self.register_buffer("index", index, persistent=False)
        self.used = torch.tensor(used_ids, dtype=torch.long)
        self.rows = torch.nn.Embedding.from_pretrained(full.weight.detach()[self.used].clone(), freeze=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.rows(self.index[input_ids])

    @torch.no_grad()
    def scatter_into(self, full: torch.nn.Embedding) -> torch.nn.Embedding:
        full.weight[self.used] = self.rows.weight.to(full.weight.dtype)
        return full


def emphasis_captions(cfg: TrainConfig, tok, samples, ids: torch.Tensor):
    """(ids, weights, mask): each eligible scene's weighted caption (emphasis.py); plain ids elsewhere."""
    import random

    emph_ids, emph_weights = ids.clone(), torch.ones(ids.shape, dtype=torch.float32)
    mask = torch.zeros(len(samples), dtype=torch.bool)
    for i, sample in enumerate(samples):
        if eligible(sample):
            text = weighted_caption(sample, random.Random(cfg.seed * 7919 + i))
            row_ids, row_weights = encode_ids_and_weights(tok, text)
            emph_ids[i], emph_weights[i], mask[i] = torch.tensor(row_ids), torch.tensor(row_weights), True
    return emph_ids, emph_weights, mask


def denoising_loss(pred: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, noise, gamma: float,
                   cell_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Epsilon MSE, per sample weighted min(SNR, gamma) / SNR when gamma > 0 (Min-SNR for epsilon targets);
    `cell_weights` (N x 1 x h x w) weighs each latent cell's error (edge_weights)."""
    error = F.mse_loss(pred, eps, reduction="none")
    if cell_weights is not None:
        error = error * cell_weights
    if gamma <= 0:
        return error.mean()
    from diffusers.training_utils import compute_snr

    snr = compute_snr(noise, t)
    per_sample = error.mean(dim=(1, 2, 3))
    return (per_sample * snr.clamp(max=gamma) / snr).mean()


def edge_weights(images: torch.Tensor, factor: int, strength: float) -> torch.Tensor:
    """Per latent cell: 1 + strength x the share of its pixels on a colour boundary (N x 1 x H/f x W/f).

    A boundary pixel differs from a 4-neighbour; the map is dilated by one pixel so that a cell the outline
    only grazes still counts. The pictures are flat colours, so this is exactly the shapes' outlines."""
    step_x = (images[..., :, 1:] - images[..., :, :-1]).abs().amax(dim=1, keepdim=True) > 0.1
    step_y = (images[..., 1:, :] - images[..., :-1, :]).abs().amax(dim=1, keepdim=True) > 0.1
    edge = torch.zeros_like(images[:, :1], dtype=torch.bool)
    edge[..., :, 1:] |= step_x
    edge[..., :, :-1] |= step_x
    edge[..., 1:, :] |= step_y
    edge[..., :-1, :] |= step_y
    edge = F.max_pool2d(edge.float(), 3, stride=1, padding=1)
    return 1.0 + strength * F.avg_pool2d(edge, factor)


@dataclass
class TwinData:
    """The one-shape scenes' twins (dataset.shape_twin): row k is the twin of scene `scenes[k]`; at 128 px only
    the first `count[128]` rows exist (the scenes encoded at 128 px are a prefix)."""

    scenes: torch.Tensor
    count: dict[int, int]
    latents: dict[int, torch.Tensor]
    ids: torch.Tensor
    cell_weights: dict[int, torch.Tensor] | None


@dataclass
class DenoiserData:
    """Stage 2 and 3's frozen inputs: latents per side, caption token ids and their variants per scene."""

    latents: dict[int, torch.Tensor]
    count: dict[int, int]
    ids: torch.Tensor
    empty: torch.Tensor
    emph_ids: torch.Tensor
    emph_weights: torch.Tensor
    has_emphasis: torch.Tensor
    partial_ids: torch.Tensor
    has_partial: torch.Tensor
    cell_weights: dict[int, torch.Tensor] | None = None  # per side, from edge_weights (edge_loss_weight > 0)
    twins: TwinData | None = None  # when stage 2 or stage 3 uses twin batches

    @functools.cached_property
    def used_ids(self) -> list[int]:
        # The token ids any caption variant uses (the compact embedding's rows); asked for more than once, and
        # the id tensors are frozen, so the set of three 6000x77 tensors is built once.
        return sorted(set(self.ids.flatten().tolist()) | set(self.emph_ids.flatten().tolist())
                      | set(self.partial_ids.flatten().tolist()))


def partial_captions(cfg: TrainConfig, tok, samples, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask): each several-shape scene's one-shape caption; the plain ids elsewhere."""
    import random

    texts = [partial_caption(s, random.Random(cfg.seed * 104_729 + i)) for i, s in enumerate(samples)]
    mask = torch.tensor([t is not None for t in texts])
    out = ids.clone()
    rows = [i for i, t in enumerate(texts) if t is not None]
    if rows:
        out[rows] = caption_ids(tok, [texts[i] for i in rows])
    return out, mask


@torch.no_grad()
def prepare_data(cfg: TrainConfig, vae, log: Log) -> DenoiserData:
    """Scene i at 128 and at 64 px share caption i; latents computed once, so the loops never run the VAE."""
    small_samples = make_dataset(cfg.seed, cfg.images, 64)
    tok = arch.tokenizer()
    ids = caption_ids(tok, [s.caption for s in small_samples])
    emph_ids, emph_weights, has_emphasis = emphasis_captions(cfg, tok, small_samples, ids)
    partial_ids, has_partial = partial_captions(cfg, tok, small_samples, ids)
    factor = 2 ** (len(cfg.sizes.vae_channels) - 1)
    pictures = {64: to_tensor(s.image for s in small_samples)}
    count = {64: cfg.images, 128: min(cfg.images_128, cfg.images)}
    large_samples = make_dataset(cfg.seed, count[128], 128)
    pictures[128] = to_tensor(s.image for s in large_samples)
    latents, cell_weights = encode_sides(cfg, vae, pictures, factor)
    del pictures
    twins = (prepare_twins(cfg, vae, tok, {64: small_samples, 128: large_samples}, factor)
             if max(cfg.twin_share, cfg.finetune_twin_share if cfg.finetune_steps else 0) > 0 else None)
    del small_samples, large_samples
    log.point("data", 0, 0.0, f"{cfg.images} scenes encoded ({count[128]} at 128 px); "
              f"latent std {latents[64].std():.3f}; {int(has_emphasis.sum())} with emphasis captions, "
              f"{int(has_partial.sum())} with partial ones, "
              f"{len(twins.scenes) if twins else 0} with shape twins")
    return DenoiserData(latents, count, ids, caption_ids(tok, [""])[0], emph_ids, emph_weights, has_emphasis,
                        partial_ids, has_partial, cell_weights, twins)


def encode_sides(cfg: TrainConfig, vae, pictures: dict[int, torch.Tensor], factor: int):
    """(latents, cell weights or None) per side of the 64 and 128 px pictures."""
    latents = {side: encode_latents(vae, pictures[side]) for side in (64, 128)}
    cells = ({side: edge_weights(pictures[side], factor, cfg.edge_loss_weight) for side in (64, 128)}
             if cfg.edge_loss_weight > 0 else None)
    return latents, cells


def prepare_twins(cfg: TrainConfig, vae, tok, samples: dict[int, list], factor: int) -> TwinData:
    """Every one-shape scene's twin, encoded at both sides like the originals."""
    pairs = [(s.index, shape_twin(s)) for s in samples[64]]
    pairs = [(i, twin) for i, twin in pairs if twin is not None]
    scenes = torch.tensor([i for i, _ in pairs], dtype=torch.long)
    count = {64: len(pairs), 128: int((scenes < len(samples[128])).sum())}
    pictures = {64: to_tensor(twin.image for _, twin in pairs),
                128: to_tensor(shape_twin(samples[128][i]).image for i, _ in pairs[:count[128]])}
    latents, cells = encode_sides(cfg, vae, pictures, factor)
    return TwinData(scenes, count, latents, caption_ids(tok, [twin.caption for _, twin in pairs]), cells)


def build_denoiser(cfg: TrainConfig, data: DenoiserData):
    """(unet, text_encoder) freshly initialised, the text encoder's unused token rows zero."""
    unet = arch.build_unet(cfg.sizes)
    text = arch.build_text_encoder(cfg.sizes, set(data.used_ids))
    return unet, text


def load_denoiser(cfg: TrainConfig, path: Path):
    """(vae, unet, text_encoder) of a saved demo checkpoint, read by our own loader, in fp32."""
    from modules.pipelines.loading import load_pipeline

    pipe, _ = load_pipeline(path)
    unet = arch.build_unet(cfg.sizes)
    unet.load_state_dict(pipe.unet.state_dict())
    text = arch.build_text_encoder(cfg.sizes, set())
    text.load_state_dict(pipe.text_encoder.state_dict())
    return pipe.vae.float().eval(), unet, text


def train_denoiser(cfg: TrainConfig, data: DenoiserData, unet, text, log: Log, *, stage: str, steps: int,
                   lr: float, warmup: int, partial_share: float, share_128: float, twin_share: float):
    """Train (unet, text_encoder) for `steps` and leave their EMA weights in them (returned, in eval mode)."""
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    unet.train()
    text.train()
    fix_final_norm_shift(text)
    full_embedding = text.get_input_embeddings()
    compact = CompactEmbedding(full_embedding, data.used_ids)
    text.set_input_embeddings(compact)
    unet_params = [p for p in unet.parameters() if p.requires_grad]
    text_params = [p for p in text.parameters() if p.requires_grad]
    params = unet_params + text_params
    noise = DDPMScheduler.from_config(arch.scheduler_config())
    opt = torch.optim.AdamW([{"params": unet_params}, {"params": text_params, "lr": lr * cfg.text_lr_scale}],
                            lr=lr, weight_decay=1e-2, foreach=True)
    sched = get_scheduler("cosine", opt, num_warmup_steps=warmup, num_training_steps=steps)
    ema = EMAModel(params, decay=cfg.ema_decay, use_ema_warmup=True, foreach=True)

    # epsilon prediction, uniform timesteps, some captions emptied for CFG
    running, t0, c0 = None, time.perf_counter(), time.process_time()
    for step in range(1, steps + 1):
        if cfg.budget_s and log.elapsed() > cfg.budget_s:
            log.point(stage, step - 1, running or 0.0, f"stopped early: time budget {cfg.budget_s:.0f} s spent")
            break
        side = 128 if torch.rand(()) < share_128 else 64
        twin = data.twins is not None and data.twins.count[side] > 0 and bool(torch.rand(()) < twin_share)
        if twin:
            x0, cond, weights, eps, t, cells = twin_batch(cfg, data, side, noise)
        else:
            pick = torch.randint(data.count[side], (cfg.batch,))
            x0 = data.latents[side][pick]
            weighted = data.has_emphasis[pick] & (torch.rand(cfg.batch) < cfg.emphasis_share)
            partial = data.has_partial[pick] & ~weighted & (torch.rand(cfg.batch) < partial_share)
            cond = torch.where(weighted[:, None], data.emph_ids[pick], data.ids[pick])
            cond = torch.where(partial[:, None], data.partial_ids[pick], cond)
            weights = torch.where(weighted[:, None], data.emph_weights[pick],
                                  torch.ones_like(data.emph_weights[pick]))
            dropped = torch.rand(cfg.batch) < cfg.caption_dropout
            cond[dropped], weights[dropped] = data.empty, 1.0
            eps = torch.randn_like(x0)
            t = torch.randint(0, noise.config.num_train_timesteps, (cfg.batch,))
            cells = data.cell_weights[side][pick] if data.cell_weights else None
        # clip skip 1 and "Original" emphasis, as our prompt encoder feeds the UNet
        hidden = emphasise(text(cond).last_hidden_state, weights)
        pred = unet(noise.add_noise(x0, eps, t), t, encoder_hidden_states=hidden).sample
        loss = denoising_loss(pred, eps, t, noise, cfg.min_snr_gamma, cells)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        ema.step(params)
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % cfg.log_every == 0 or step == steps:
            log.point(stage, step, running,
                      f"lr {sched.get_last_lr()[0]:.2e} {step / (time.perf_counter() - t0):.2f} steps/s, "
                      f"{(time.process_time() - c0) / step:.2f} cpu s/step")
    ema.copy_to(params)
    text.set_input_embeddings(compact.scatter_into(full_embedding))
    return unet.eval(), text.eval()


def twin_batch(cfg: TrainConfig, data: DenoiserData, side: int, noise):
    """(x0, caption ids, token weights, noise, timesteps, cell weights) of a twin-pair batch: scenes, then
    their twins (data.twins), the two halves under the same noise and timesteps."""
    twins = data.twins
    half = max(1, cfg.batch // 2)
    rows = torch.randint(twins.count[side], (half,))
    scenes = twins.scenes[rows]
    x0 = torch.cat([data.latents[side][scenes], twins.latents[side][rows]])
    cond = torch.cat([data.ids[scenes], twins.ids[rows]])
    weights = torch.ones(cond.shape, dtype=data.emph_weights.dtype)
    dropped = torch.rand(len(cond)) < cfg.caption_dropout
    cond[dropped] = data.empty
    eps = torch.randn_like(x0[:half]).repeat(2, 1, 1, 1)
    t = torch.randint(0, noise.config.num_train_timesteps, (half,)).repeat(2)
    cells = (torch.cat([data.cell_weights[side][scenes], twins.cell_weights[side][rows]])
             if data.cell_weights and twins.cell_weights else None)
    return x0, cond, weights, eps, t, cells


# ---- saving -----------------------------------------------------------------------------------------

def assemble(vae, unet, text):
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae, text_encoder=text, tokenizer=arch.tokenizer(), unet=unet,
        scheduler=PNDMScheduler.from_config(arch.scheduler_config()),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def save(cfg: TrainConfig, pipe, log: Log) -> Path:
    """The checkpoint (LDM keys via our own exporter), its config folder and the training record."""
    from safetensors.torch import save_file

    from modules.pipelines.ldm_layout import export_ldm_state_dict

    dtype = {"fp16": torch.float16, "fp32": torch.float32}[cfg.save_dtype]
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = cfg.out.with_name(f".{cfg.out.name}.{os.getpid()}.tmp")
    save_file(export_ldm_state_dict(pipe, dtype), str(tmp), metadata=DEMO_METADATA)
    os.replace(tmp, cfg.out)  # a crash never leaves half a checkpoint under the real name
    arch.write_config_folder(cfg.out.with_name(cfg.out.stem + ".config"), cfg.sizes,
                             pipe.vae.config.scaling_factor)
    params = {name: sum(p.numel() for p in getattr(pipe, name).parameters())
              for name in ("vae", "unet", "text_encoder")}
    config = {**asdict(cfg), "out": str(cfg.out), "sizes": arch.sizes_record(cfg.sizes),
              "vae_from": str(cfg.vae_from) if cfg.vae_from else None,
              "init_from": str(cfg.init_from) if cfg.init_from else None}
    record = {"name": DEMO_NAME, "config": config,
              "parameters": params, "file_bytes": cfg.out.stat().st_size, "wall_s": round(log.elapsed(), 1),
              "scaling_factor": pipe.vae.config.scaling_factor, "loss_curves": log.curves}
    cfg.out.with_name(cfg.out.stem + ".train.json").write_text(json.dumps(record, indent=1) + "\n")
    return cfg.out


def run(cfg: TrainConfig) -> Path:
    """Both stages and the save; deterministic for a given config (seed, threads)."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    log = Log()
    if cfg.init_from is not None:  # stage 3 only, on a saved checkpoint's weights
        vae, unet, text = load_denoiser(cfg, cfg.init_from)
        vae.requires_grad_(False)
        data = prepare_data(cfg, vae, log) if cfg.finetune_steps > 0 else None
        return finetune_and_save(cfg, vae, unet, text, data, log)
    if cfg.vae_from is not None:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(cfg.vae_from).eval()
    else:
        vae = train_vae(cfg, log)
        vae.save_pretrained(cfg.work / "vae")  # reusable with --vae-from while tuning stage 2
    vae.requires_grad_(False)
    report_reconstruction(cfg, vae, log)
    if cfg.vae_only:
        return cfg.work / "vae"
    data = prepare_data(cfg, vae, log)
    unet, text = build_denoiser(cfg, data)
    unet, text = train_denoiser(cfg, data, unet, text, log, stage="unet", steps=cfg.steps, lr=cfg.lr,
                                warmup=cfg.warmup, partial_share=cfg.stage2_partial_share,
                                share_128=cfg.share_128, twin_share=cfg.twin_share)
    return finetune_and_save(cfg, vae, unet, text, data, log)


def finetune_and_save(cfg: TrainConfig, vae, unet, text, data: DenoiserData | None, log: Log) -> Path:
    if cfg.finetune_steps > 0:
        # its own seed: `--init-from` a stage-2 result draws the same batches as the one-command run
        torch.manual_seed(cfg.seed + 3)
        unet, text = train_denoiser(cfg, data, unet, text, log, stage="finetune", steps=cfg.finetune_steps,
                                    lr=cfg.finetune_lr, warmup=cfg.finetune_warmup,
                                    partial_share=cfg.partial_share, share_128=cfg.finetune_share_128,
                                    twin_share=cfg.finetune_twin_share)
    if cfg.decoder_steps > 0:
        torch.manual_seed(cfg.seed + 4)
        vae = train_decoder(cfg, vae, log)
        report_reconstruction(cfg, vae, log)
    path = save(cfg, assemble(vae, unet, text), log)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) in {log.elapsed():.0f} s", flush=True)
    return path


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/Stable-diffusion/demo-shapes.safetensors"))
    defaults = TrainConfig(out=Path("."))
    for name in ("seed", "threads", "vae_images", "vae_steps", "vae_batch", "vae_lr", "vae_warmup",
                 "vae_pool_loss", "images", "images_128", "steps",
                 "batch", "lr", "warmup", "min_snr_gamma", "emphasis_share", "ema_decay", "caption_dropout",
                 "share_128", "log_every", "budget_s", "finetune_steps", "finetune_lr", "finetune_warmup",
                 "partial_share", "stage2_partial_share", "decoder_steps", "decoder_lr", "edge_loss_weight",
                 "text_lr_scale", "twin_share", "finetune_share_128", "finetune_twin_share"):
        value = getattr(defaults, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    parser.add_argument("--save-dtype", choices=("fp16", "fp32"), default=defaults.save_dtype)
    for name in ("vae_channels", "vae_groups", "unet_channels", "unet_groups", "text_layers"):
        value = getattr(defaults.sizes, name)
        kind = (lambda text: tuple(int(v) for v in text.split(","))) if isinstance(value, tuple) else int
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=value,
                            help="model size (Sizes); lists comma-separated")
    parser.add_argument("--vae-only", action="store_true", help="train and check the VAE only")
    parser.add_argument("--no-vae-colour-init", dest="vae_colour_init", action="store_false",
                        help="start the VAE from diffusers' random init instead of the colour path")
    parser.add_argument("--vae-from", type=Path, default=None, help="a saved stage-1 vae/ folder to reuse")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="a saved demo checkpoint: run stage 3 (the fine-tune) on its weights only")
    args = vars(parser.parse_args(argv))
    sizes = replace(defaults.sizes, **{k: args.pop(k) for k in list(args) if hasattr(defaults.sizes, k)})
    return replace(defaults, sizes=sizes, **args)


if __name__ == "__main__":
    run(parse_args())
