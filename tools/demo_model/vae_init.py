"""Start the demo VAE with a working colour path: latents 0-2 = the 8x8-pooled RGB, decoded back as is.

A fresh AutoencoderKL loses flat colours for thousands of steps: every GroupNorm removes each group's
mean, so a background's absolute colour only survives as a pattern the net has to learn first. Here the
weights start so that the residual stream carries four exact channels through both halves:

- channels 0-2: the RGB, averaged 2x2 by each downsampler (8x8 pooling at the latent) and repeated by
  each nearest upsampler; channel 3: a constant K, written by the conv_in biases; channels 4-6: minus
  the RGB, so the colour adds nothing to a GroupNorm's mean (white and black shift it alike otherwise);
- every resnet's last conv and the mid-block attention's output projection are zero, so each block is
  the identity at step 0 (the "zero-init residual" trick) and training adds detail on top;
- the two GroupNorms before a conv_out see those channels with K dominating, so each sample's mean and
  std are about the same: the norm's scale and shift are set to undo them (measured on a batch), plus an
  offset M that keeps the SiLU after it in its near-linear range; conv_out takes the offset off again.

Latent channel 3 and every other feature channel start near zero and are free to learn the edges.
The result is an ordinary AutoencoderKL (same layout and keys); only its starting weights differ.
"""
from __future__ import annotations

import torch
from torch import nn

COLOUR = 3  # channels 0-2 carry RGB; channel 3 the constant; 4-6 minus the RGB
CARRY = 2 * COLOUR + 1  # channels kept exact through every conv of the residual stream
K = 20.0  # the constant: dominates each GroupNorm's std, so it barely depends on the picture
M = 8.0  # keeps SiLU(x + M) ~ x + M for x in [-1, 1] (sigmoid(7) = 0.9991)
LOGVAR = -12.0  # posterior std ~0.0025 at start: sampled latents are the mean, not noise


def _identity_taps(conv: nn.Conv2d, channels: int, taps: list[tuple[int, int]]) -> None:
    """Rows 0..channels-1 of conv read only their own input channel, equally from `taps`."""
    with torch.no_grad():
        conv.weight[:channels] = 0.0
        conv.weight[:, :channels] *= 0.1  # other rows: keep only a little of the colour
        if channels == CARRY:  # a conv on the residual stream: nothing reads K (the bias does its job)
            conv.weight[:, COLOUR] = 0.0
        for c in range(channels):
            for y, x in taps:
                conv.weight[c, c, y, x] = 1.0 / len(taps)
        if conv.bias is not None:
            conv.bias[:channels] = 0.0


def _carry_in(conv: nn.Conv2d) -> None:
    """A conv_in whose inputs 0-2 are the colour: out 0-2 = colour, 3 = K, 4-6 = -colour."""
    _identity_taps(conv, COLOUR, _centre(conv))
    with torch.no_grad():
        conv.weight[COLOUR:CARRY] = 0.0
        conv.bias[COLOUR] = K
        y, x = _centre(conv)[0]
        for c in range(COLOUR):
            conv.weight[COLOUR + 1 + c, c, y, x] = -1.0
        conv.bias[COLOUR + 1:CARRY] = 0.0


def _centre(conv: nn.Conv2d) -> list[tuple[int, int]]:
    return [(conv.kernel_size[0] // 2, conv.kernel_size[1] // 2)]


def _stream_convs(vae) -> list[nn.Conv2d]:
    """The convs that read the residual stream itself (not a normalised copy): K reaches them raw."""
    from diffusers.models.resnet import ResnetBlock2D

    convs = [b.conv_shortcut for b in vae.modules() if isinstance(b, ResnetBlock2D) and b.conv_shortcut]
    for block in list(vae.encoder.down_blocks) + list(vae.decoder.up_blocks):
        convs += [s.conv for s in (getattr(block, "downsamplers", None) or getattr(block, "upsamplers", None)
                                   or [])]
    return convs


def keep_constant_unread(vae) -> list:
    """Gradient hooks that keep every stream conv's weights on channel K at zero while training.

    A weight on K moves its output K = 20 times as much as one on a colour channel: at the same learning
    rate these few weights swing the whole stream (stage-1 loss jumped 0.10 -> 0.26 at lr 1e-3). They add
    nothing a bias cannot, so they stay zero. Returns the hook handles (remove them after training).
    """
    def hook(grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        grad[:, COLOUR] = 0.0
        return grad

    # frozen parts (the encoder while stage 4 trains the decoder) get no gradient and need no hook
    return [conv.weight.register_hook(hook) for conv in _stream_convs(vae) if conv.weight.requires_grad]


def _zero_residual_branches(module: nn.Module) -> None:
    from diffusers.models.attention_processor import Attention
    from diffusers.models.resnet import ResnetBlock2D

    with torch.no_grad():
        for block in module.modules():
            if isinstance(block, ResnetBlock2D):
                block.conv2.weight.zero_()
                block.conv2.bias.zero_()
                if block.conv_shortcut is not None:
                    _identity_taps(block.conv_shortcut, CARRY, _centre(block.conv_shortcut))
            elif isinstance(block, Attention):
                block.to_out[0].weight.zero_()
                block.to_out[0].bias.zero_()


def _undo_norm(norm: nn.GroupNorm, features: torch.Tensor) -> None:
    """Scale and shift so the norm maps channels 0-2 back to about their input values, plus M."""
    n, c = features.shape[:2]
    group = features[:, : c // norm.num_groups].reshape(n, -1)  # the carried channels live in group 0
    mean, std = group.mean(1).mean(), (group.var(1, unbiased=False) + norm.eps).sqrt().mean()
    with torch.no_grad():
        norm.weight[:COLOUR] = std
        norm.bias[:COLOUR] = mean + M


def _norm_input(vae, norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    seen = []
    handle = norm.register_forward_hook(lambda _m, args, _out: seen.append(args[0].detach()))
    try:
        with torch.no_grad():
            vae(x)
    finally:
        handle.remove()
    return seen[0]


def init_colour_path(vae, probe: torch.Tensor):
    """Set vae's weights as described above; `probe` (N x 3 x H x W in [-1, 1]) measures the norms."""
    enc, dec = vae.encoder, vae.decoder
    if enc.conv_in.out_channels // vae.config.norm_num_groups < CARRY:
        raise ValueError(f"colour init: each GroupNorm group needs >= {CARRY} channels "
                         f"(first level {enc.conv_in.out_channels}, {vae.config.norm_num_groups} groups)")
    with torch.no_grad():
        # encoder: RGB and minus RGB in, K from the bias, 2x2 averages at each downsampler
        _carry_in(enc.conv_in)
        _zero_residual_branches(enc)
        for block in enc.down_blocks:
            for down in block.downsamplers or []:  # stride 2, padded right/bottom: taps (0..1, 0..1)
                _identity_taps(down.conv, CARRY, [(0, 0), (0, 1), (1, 0), (1, 1)])
        # latent mean 0-2 = colour; latent 3 and the log-variances start near 0 / LOGVAR
        latent = vae.config.latent_channels
        enc.conv_out.weight.mul_(0.01)
        _identity_taps(enc.conv_out, COLOUR, _centre(enc.conv_out))
        enc.conv_out.bias[:COLOUR] = -M
        enc.conv_out.bias[latent:] = LOGVAR
        if vae.quant_conv is not None:
            vae.quant_conv.weight.copy_(torch.eye(2 * latent).view(2 * latent, 2 * latent, 1, 1))
            vae.quant_conv.bias.zero_()
        # decoder: latents 0-2 in, K from the bias, nearest upsampling keeps them
        if vae.post_quant_conv is not None:
            vae.post_quant_conv.weight.copy_(torch.eye(latent).view(latent, latent, 1, 1))
            vae.post_quant_conv.bias.zero_()
        _carry_in(dec.conv_in)
        _zero_residual_branches(dec)
        for block in dec.up_blocks:
            for up in block.upsamplers or []:
                _identity_taps(up.conv, CARRY, _centre(up.conv))
        dec.conv_out.weight.mul_(0.01)
        _identity_taps(dec.conv_out, COLOUR, _centre(dec.conv_out))
        dec.conv_out.bias[:] = -M
    # the two norms before conv_out: measured after everything before them is set
    _undo_norm(enc.conv_norm_out, _norm_input(vae, enc.conv_norm_out, probe))
    _undo_norm(dec.conv_norm_out, _norm_input(vae, dec.conv_norm_out, probe))
    return vae
