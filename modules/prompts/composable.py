"""Composable diffusion (`a AND b:0.5`) as a UNet patch for diffusers' CFG loop.

A1111 guides with  noise = uncond + cfg * sum_i w_i * (cond_i - uncond). diffusers' loop computes
uncond + cfg * (text - uncond) from one UNet call on [uncond rows, text rows], so the patch makes the UNet
return  text = uncond + sum_i w_i * (cond_i - uncond)  for every text row: it runs the uncond rows and all
sub-prompt rows in one batched call (or in slices of `max_rows`), then folds each prompt's sub-prompt
outputs back into one row. Negative weights work the same way. Without CFG (guidance scale <= 1) the
patch runs the negative prompt itself, which gives A1111's result at cfg scale 1.

Installing: the patch sets `forward` on the UNet *instance* (never on a class) around the wrapped call and
restores exactly what was there on exit, so accelerate's offload hooks (which also live in the instance's
`forward`) keep working inside. Forward hooks could not do this: one call becomes several when sliced.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from modules.unet_rows import sample_of, take_rows, with_sample

if TYPE_CHECKING:  # typing.Self is 3.11+; annotations are strings here
    from typing_extensions import Self

_MISSING = object()
CHUNK_POSITIONS = 77


@dataclass(frozen=True)
class SubCond:
    """One sub-prompt of a prompt: its AND weight, embeddings [L, width] and SDXL pooled vector."""

    weight: float
    embeds: torch.Tensor
    pooled: torch.Tensor | None


@dataclass(frozen=True)
class Frame:
    """Conditioning of one step, all at one sequence length L: [prompts, L, width] and per-prompt sub-conds."""

    positive: torch.Tensor
    negative: torch.Tensor
    pooled: torch.Tensor | None
    negative_pooled: torch.Tensor | None
    subconds: tuple[tuple[SubCond, ...], ...]
    # () -> [77, width], what pads shorter rows: encoded on first use (a text-encoder pass most jobs,
    # whose rows are all of one length, never need)
    empty_chunk: Callable[[], torch.Tensor]


@dataclass
class ScheduleState:
    """Shared by the step callback and the UNet patch: 0-based index of the UNet evaluation about to run."""

    step: int = 0


def schedule_state() -> ScheduleState:
    return ScheduleState()


class ComposablePatch:
    """Context manager: while active, `pipe.unet` evaluates AND sub-prompts and combines their outputs."""

    def __init__(self, pipe, frame_at: Callable[[int], Frame], state: ScheduleState, prompts: int,
                 max_rows: int | None = None):
        self.pipe, self.frame_at, self.state = pipe, frame_at, state
        self.prompts, self.max_rows = prompts, max_rows
        self._unet = None
        self._saved: Any = _MISSING

    def __enter__(self) -> Self:
        if self._unet is not None:
            raise RuntimeError("the AND patch is already active")
        unet = self.pipe.unet
        self.state.step = 0
        self._saved = unet.__dict__.get("forward", _MISSING)
        unet.forward = functools.partial(self._forward, unet.forward)
        self._unet = unet
        return self

    def __exit__(self, *exc) -> None:
        unet, self._unet = self._unet, None
        if self._saved is _MISSING:
            unet.__dict__.pop("forward", None)
        else:
            unet.forward = self._saved
        self._saved = _MISSING

    def _forward(self, inner, *args, **kwargs):
        args = list(args)
        sample = args.pop(0) if args else kwargs.pop("sample")
        timestep = args.pop(0) if args else kwargs.pop("timestep")
        hidden = args.pop(0) if args else kwargs.pop("encoder_hidden_states")
        n, rows = self.prompts, sample.shape[0]
        cfg = bool(getattr(self.pipe, "do_classifier_free_guidance", rows == 2 * n))
        if rows % (2 * n if cfg else n):  # a layout we do not know: leave the call alone
            return inner(sample, timestep, hidden, *args, **kwargs)
        per = rows // (2 * n if cfg else n)  # images per prompt
        frame = self.frame_at(self.state.step + 1)
        plan = _expand(frame, hidden, n, per, cfg)

        index = torch.tensor(plan.index, device=sample.device)
        shared = {"sample": sample, "timestep": timestep, "args": args,
                  **{k: v for k, v in kwargs.items() if k != "cross_attention_kwargs"}}
        expanded = take_rows(shared, index, rows)
        expanded["encoder_hidden_states"] = plan.hidden.to(hidden)
        added = expanded.get("added_cond_kwargs")
        if isinstance(added, dict) and added.get("text_embeds") is not None and plan.pooled_rows:
            text_embeds = added["text_embeds"].clone()
            for row, vector in plan.pooled_rows:
                text_embeds[row] = vector.to(text_embeds)
            expanded["added_cond_kwargs"] = {**added, "text_embeds": text_embeds}

        outputs, first = [], None
        total = len(plan.index)
        step = self.max_rows if self.max_rows and self.max_rows > 0 else total
        for start in range(0, total, step):
            piece = take_rows(expanded, torch.arange(start, min(start + step, total), device=sample.device), total)
            extra_args = piece.pop("args")
            result = inner(piece.pop("sample"), piece.pop("timestep"), piece.pop("encoder_hidden_states"),
                           *extra_args, cross_attention_kwargs=kwargs.get("cross_attention_kwargs"), **piece)
            first = result if first is None else first
            outputs.append(sample_of(result))
        combined = _combine(torch.cat(outputs), plan, cfg)
        return with_sample(first, combined)


@dataclass
class _Expansion:
    index: list[int]  # source row (in the pipeline's batch) of every expanded row
    hidden: torch.Tensor  # encoder hidden states of every expanded row
    groups: list[list[tuple[int, float]]]  # per output text row: (expanded row, weight) of its sub-prompts
    uncond: int  # leading expanded rows that are uncond
    pooled_rows: list[tuple[int, torch.Tensor]]  # SDXL: expanded row -> pooled vector to use


def _expand(frame: Frame, hidden: torch.Tensor, n: int, per: int, cfg: bool) -> _Expansion:
    uncond = n * per
    length = max(hidden.shape[1], frame.positive.shape[1])
    blocks: list[torch.Tensor] = []
    pooled_rows: list[tuple[int, torch.Tensor]] = []
    if cfg:
        blocks.append(_pad(hidden[:uncond], length, frame.empty_chunk))
    else:  # no uncond rows in the pipeline's batch: run the negative prompt ourselves
        blocks.append(_pad(frame.negative.repeat_interleave(per, 0), length, frame.empty_chunk))
        if frame.negative_pooled is not None:
            pooled_rows += [(r, frame.negative_pooled[r // per]) for r in range(uncond)]
    index = list(range(uncond))
    offset = uncond if cfg else 0
    groups, subs = [], []
    for r in range(n * per):
        members = []
        for sub in frame.subconds[r // per]:
            members.append((len(index), sub.weight))
            if sub.pooled is not None:
                pooled_rows.append((len(index), sub.pooled))
            index.append(offset + r)
            subs.append(sub.embeds)
        groups.append(members)
    blocks.append(_pad(torch.stack(subs).to(blocks[0]), length, frame.empty_chunk))
    return _Expansion(index, torch.cat(blocks), groups, uncond, pooled_rows)


def _pad(rows: torch.Tensor, length: int, empty_chunk: Callable[[], torch.Tensor]) -> torch.Tensor:
    missing = (length - rows.shape[1]) // CHUNK_POSITIONS
    if missing <= 0:
        return rows
    pad = empty_chunk().to(rows).repeat(missing, 1).unsqueeze(0).expand(rows.shape[0], -1, -1)
    return torch.cat([rows, pad], dim=1)


def _combine(out: torch.Tensor, plan: _Expansion, cfg: bool) -> torch.Tensor:
    uncond = out[:plan.uncond]
    rows = []
    for r, members in enumerate(plan.groups):
        if len(members) == 1 and members[0][1] == 1.0:
            rows.append(out[members[0][0]])
            continue
        base = uncond[r].float()
        acc = base.clone()
        for row, weight in members:
            acc += weight * (out[row].float() - base)
        rows.append(acc.to(out.dtype))
    text = torch.stack(rows)
    return torch.cat([uncond, text]) if cfg else text
