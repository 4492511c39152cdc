"""Run-time conditioning for one diffusers call: prompt schedules, AND, padding, infotext extras.

`prepare_conditioning` turns the batch's prompt strings into `prompt_embeds` (and SDXL's pooled embeds)
for the pipeline's first step, plus a step callback that swaps them where `[a:b:when]` or `[a|b]` change
the text, plus a UNet patch that implements composable diffusion (`a AND b:0.5`).

Steps. diffusers calls `callback_on_step_end` after every UNet evaluation with its 0-based index `i`; the
callback installs the conditioning of 1-based step `i + 2` for the next evaluation, so the schedule's step
`s` is the pipeline's `s`-th UNet evaluation (`[a:b:0.5]` at 10 steps: a for evaluations 1-5, b for 6-10).
Like A1111's k-diffusion denoiser we count evaluations, not sampler steps: second-order schedulers (Heun,
DPM2, DPM++ SDE) evaluate twice per step, so there the schedule advances twice per displayed step.
Evaluations past the schedule's last step keep its last text. Hires pass: pass the first pass's `steps`
and the second pass's `hires_steps`; the schedule then runs over the hires steps (A1111's convention).

Padding. diffusers concatenates [negative, positive] along the batch for CFG, so all rows of one UNet
call need the same sequence length. Shorter conditionings are padded with the embeddings of empty chunks
(A1111's "pad prompt/negative prompt to be same length"); A1111 without that option runs cond and uncond
in separate UNet calls instead, which diffusers cannot. `pad_conds=True` pads every conditioning of the
job to the longest one, so the length never changes between steps; False pads per step only as needed.

SDXL. An empty negative prompt gives all-zero embeddings and pooled vector when the pipeline's config says
`force_zeros_for_empty_prompt` (as diffusers and A1111 do); pooled vectors come from each text's first chunk.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from modules.prompts.composable import ComposablePatch, Frame, SubCond, schedule_state
from modules.prompts.embeddings import EmbeddingSet
from modules.prompts.encode import CHUNK_TOKENS, EMPHASIS_MODES, EncodedPrompt, PromptEncoder
from modules.prompts.parser import get_learned_conditioning_prompt_schedules, get_multicond_prompt_list
from modules.types import UserInputError

CHUNK_POSITIONS = CHUNK_TOKENS + 2  # 77
ZERO_TEXT = object()  # marks an SDXL empty negative prompt: all-zero embeddings, never encoded


@dataclass
class PreparedConditioning:
    """What one pipeline call needs: kwargs for step 1, the step callback, the UNet patch, infotext extras."""

    pipe_kwargs: dict[str, Any]
    step_callback: Callable[..., dict] | None = None
    callback_tensor_inputs: list[str] = field(default_factory=list)
    patch: Any = field(default_factory=contextlib.nullcontext)
    extra_params: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def prepare_conditioning(pipe, prompts: list[str], negative_prompts: list[str], *, steps: int,
                         hires_steps: int | None = None, clip_skip: int = 1, emphasis: str = "Original",
                         embeddings=None, pad_conds: bool = False,
                         max_unet_rows: int | None = None) -> PreparedConditioning:
    """Embeddings and step machinery for `pipe(**pipe_kwargs)`; steps >= 1, clip_skip >= 1 (A1111 units).

    `embeddings` is an EmbeddingDatabase or EmbeddingSet (None: no textual inversion); `max_unet_rows` caps
    the batch of one UNet call when AND needs extra rows (None: all sub-prompts in one call).
    """
    # 1. Check the inputs.
    prompts, negatives = list(prompts), list(negative_prompts)
    if not prompts:
        raise UserInputError("no prompts to encode", field="prompt")
    if len(negatives) == 1 and len(prompts) > 1:
        negatives = negatives * len(prompts)
    if len(negatives) != len(prompts):
        raise UserInputError(f"{len(negatives)} negative prompts for {len(prompts)} prompts", "negative_prompt")
    if emphasis not in EMPHASIS_MODES:
        raise UserInputError(f"unknown emphasis {emphasis!r}; choose one of {', '.join(EMPHASIS_MODES)}")
    warnings: list[str] = []

    # 2. The encoder over the pipeline's own tokenizer(s) and text encoder(s), with the usable embeddings.
    encoder = PromptEncoder.from_pipe(pipe, clip_skip=clip_skip, emphasis=emphasis)
    active = _embedding_set(embeddings, encoder.widths)
    if active is not None:
        encoder = PromptEncoder.from_pipe(pipe, clip_skip=clip_skip, emphasis=emphasis, embeddings=active)

    # 3. AND splits each prompt into weighted sub-prompts; each sub-prompt and negative gets a schedule.
    res_indexes, flat, _ = get_multicond_prompt_list(prompts)
    total = hires_steps if hires_steps else steps
    pos_schedules = get_learned_conditioning_prompt_schedules(flat, steps, hires_steps)
    neg_schedules = get_learned_conditioning_prompt_schedules(negatives, steps, hires_steps)
    config = getattr(pipe, "config", None) or {}
    zero_negative = encoder.sdxl and bool(config.get("force_zeros_for_empty_prompt", False))
    plan = SchedulePlan(encoder, [[(int(i), float(w)) for i, w in r] for r in res_indexes],
                        pos_schedules, neg_schedules, total, pad_conds, zero_negative)

    # 4. Step 1 goes into the pipeline kwargs.
    first = plan.frame(1)
    kwargs: dict[str, Any] = {"prompt_embeds": first.positive, "negative_prompt_embeds": first.negative}
    if encoder.sdxl:
        kwargs["pooled_prompt_embeds"] = first.pooled
        kwargs["negative_pooled_prompt_embeds"] = first.negative_pooled

    # 5. A step callback only when some text changes over the steps.
    state = schedule_state()
    callback, names = None, []
    if plan.changes():
        allowed = list(getattr(pipe, "_callback_tensor_inputs", ()))
        names = [n for n in ("prompt_embeds", "add_text_embeds") if n in allowed]
        if "prompt_embeds" in names:
            callback = ScheduleCallback(plan, state, names)
        else:
            warnings.append(f"{type(pipe).__name__} cannot change prompt embeddings during sampling; "
                            "prompt editing and alternation use the first step's prompt")

    # 6. Composable diffusion: a UNet patch that runs every sub-prompt and combines their predictions.
    patch: Any = contextlib.nullcontext()
    if plan.composable:
        if getattr(pipe, "unet", None) is None:
            warnings.append(f"{type(pipe).__name__} has no UNet; AND and sub-prompt weights are ignored")
        else:
            patch = ComposablePatch(pipe, plan.frame, state, len(prompts), max_unet_rows)

    # 7. Infotext extras and warnings.
    extra: dict[str, Any] = {}
    if emphasis != "Original":
        extra["Emphasis"] = emphasis
    used = plan.embeddings_used()
    if active is not None and used:
        extra["TI hashes"] = active.hashes(used)
    for name in plan.skipped_used():
        reason = active.skipped.get(name, "not usable") if active is not None else "not usable"
        warnings.append(f"Textual inversion embedding {name!r} skipped: {reason}")
    return PreparedConditioning(kwargs, callback, names if callback else [], patch, extra, warnings)


def _embedding_set(embeddings, widths: tuple[int, ...]) -> EmbeddingSet | None:
    if embeddings is None or isinstance(embeddings, EmbeddingSet):
        return embeddings
    return embeddings.for_model(widths)  # an EmbeddingDatabase


def text_at(schedule, step: int) -> str:
    """The text of a `[[end_at_step, text], ...]` schedule at 1-based `step` (past the end: the last)."""
    for end_at, text in schedule:
        if step <= end_at:
            return text
    return schedule[-1][1]


class SchedulePlan:
    """Which texts are active at each step, their encodings (once per distinct text) and padded frames."""

    def __init__(self, encoder: PromptEncoder, res_indexes, pos_schedules, neg_schedules, total_steps: int,
                 pad_conds: bool, zero_negative: bool):
        self.encoder, self.res_indexes = encoder, res_indexes
        self.pos_schedules, self.neg_schedules = pos_schedules, neg_schedules
        self.total_steps, self.pad_conds, self.zero_negative = max(1, int(total_steps)), pad_conds, zero_negative
        self.composable = any(len(r) != 1 or r[0][1] != 1.0 for r in res_indexes)
        self._encoded: dict[Any, EncodedPrompt] = {}
        self._frames: dict[tuple, Frame] = {}
        self._empty: torch.Tensor | None = None

    def key(self, step: int) -> tuple:
        """Texts active at 1-based `step`: one per sub-prompt, then one per negative prompt."""
        pos = tuple(text_at(s, step) for s in self.pos_schedules)
        neg = tuple(ZERO_TEXT if self.zero_negative and text_at(s, step) == "" else text_at(s, step)
                    for s in self.neg_schedules)
        return pos, neg

    def changes(self) -> bool:
        """True when some text differs between two steps of the schedule."""
        return any(self.key(step) != self.key(1) for step in range(2, self.total_steps + 1))

    def encoded(self, text) -> EncodedPrompt:
        """The encoding of `text`, computed once per plan."""
        if text not in self._encoded:
            self._encoded[text] = self._zero() if text is ZERO_TEXT else self.encoder.encode(text)
        return self._encoded[text]

    def frame(self, step: int) -> Frame:
        """Padded conditioning tensors for 1-based `step` (built once per distinct set of texts)."""
        key = self.key(step)
        if key not in self._frames:
            self._frames[key] = self._build(key)
        return self._frames[key]

    def embeddings_used(self) -> list[str]:
        """Textual-inversion names used by any text of any step, in first-use order."""
        return list(dict.fromkeys(n for e in self._all_encoded() for n in e.embeddings_used))

    def skipped_used(self) -> list[str]:
        """Names of skipped embeddings whose trigger words appear in the prompts."""
        names: dict[str, None] = {}
        for text in self._all_texts():
            if text is not ZERO_TEXT:
                names.update(dict.fromkeys(self.encoder.tokenize(text).skipped_used))
        return list(names)

    def _all_texts(self) -> list:
        keys = [self.key(step) for step in range(1, self.total_steps + 1)]
        return list(dict.fromkeys(t for pos, neg in keys for t in (*pos, *neg)))

    def _all_encoded(self) -> list[EncodedPrompt]:
        return [self.encoded(text) for text in self._all_texts()]

    def _build(self, key: tuple) -> Frame:
        pos_texts, neg_texts = key
        texts = self._all_texts() if self.pad_conds else [*pos_texts, *neg_texts]
        length = max(self.encoded(text).chunk_count for text in texts) * CHUNK_POSITIONS
        subconds = tuple(
            tuple(SubCond(weight, self._padded(pos_texts[i], length), self.encoded(pos_texts[i]).pooled)
                  for i, weight in row)
            for row in self.res_indexes
        )
        negative = [self._padded(text, length) for text in neg_texts]
        pooled = [row[0].pooled for row in subconds]
        negative_pooled = [self.encoded(text).pooled for text in neg_texts]
        return Frame(
            positive=torch.stack([row[0].embeds for row in subconds]),
            negative=torch.stack(negative),
            pooled=torch.stack(pooled) if self.encoder.sdxl else None,
            negative_pooled=torch.stack(negative_pooled) if self.encoder.sdxl else None,
            subconds=subconds,
            empty_chunk=self._empty_chunk,
        )

    def _padded(self, text, length: int) -> torch.Tensor:
        embeds = self.encoded(text).embeds
        missing = (length - embeds.shape[0]) // CHUNK_POSITIONS
        if missing <= 0:
            return embeds
        # zeroed negatives stay all zero; everything else grows by empty chunks
        pad = torch.zeros_like(embeds[:CHUNK_POSITIONS]) if text is ZERO_TEXT else self._empty_chunk()
        return torch.cat([embeds, pad.to(embeds.dtype).repeat(missing, 1)])

    def _empty_chunk(self) -> torch.Tensor:
        if self._empty is None:
            self._empty = self.encoder.empty_chunk()
        return self._empty

    def _zero(self) -> EncodedPrompt:
        template = self.encoder.encode("")
        pooled = torch.zeros_like(template.pooled) if template.pooled is not None else None
        return EncodedPrompt(torch.zeros_like(template.embeds), pooled, 0, 1)


class ScheduleCallback:
    """`callback_on_step_end` that installs the next evaluation's embeddings where the schedule changes."""

    def __init__(self, plan: SchedulePlan, state, tensor_inputs: list[str]):
        self.plan, self.state, self.tensor_inputs = plan, state, list(tensor_inputs)
        self.n = len(plan.res_indexes)

    def __call__(self, pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        """Called after 0-based evaluation `step`; returns callback_kwargs with swapped tensors."""
        self.state.step = step + 1  # 0-based index of the evaluation about to run
        upcoming = self.plan.key(step + 2)
        if upcoming == self.plan.key(step + 1):
            return callback_kwargs
        frame = self.plan.frame(step + 2)
        embeds = callback_kwargs.get("prompt_embeds")
        if embeds is not None:
            callback_kwargs["prompt_embeds"] = _pipeline_layout(pipe, embeds, self.n, frame.negative, frame.positive)
        if callback_kwargs.get("negative_prompt_embeds") is not None:
            old = callback_kwargs["negative_prompt_embeds"]
            callback_kwargs["negative_prompt_embeds"] = _repeat(frame.negative, old.shape[0] // self.n).to(old)
        pooled = callback_kwargs.get("add_text_embeds")
        if pooled is not None and frame.pooled is not None:
            callback_kwargs["add_text_embeds"] = _pipeline_layout(pipe, pooled, self.n, frame.negative_pooled,
                                                                  frame.pooled)
        return callback_kwargs


def _repeat(tensor: torch.Tensor, times: int) -> torch.Tensor:
    # diffusers repeats each prompt num_images_per_prompt times in a row
    return tensor.repeat_interleave(max(1, times), dim=0)


def _pipeline_layout(pipe, current: torch.Tensor, n: int, negative: torch.Tensor, positive: torch.Tensor):
    """`positive` (and `negative`) laid out as the pipeline holds `current`: cat([neg, pos]) under CFG."""
    rows = current.shape[0]
    cfg = getattr(pipe, "do_classifier_free_guidance", rows == 2 * n)
    if cfg:
        per = rows // (2 * n)
        return torch.cat([_repeat(negative, per), _repeat(positive, per)]).to(current)
    return _repeat(positive, rows // n).to(current)
