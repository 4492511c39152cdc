"""Prompt text for a job (styles, `#` comments) and the conditioning factory that turns it into pipe kwargs.

The real factory is `modules.prompts.conditioning.prepare_conditioning` (weights, BREAK, AND, schedules,
embeddings). Until it is importable, `plain_conditioning` passes the prompt strings to diffusers as they are.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modules.prompts.extra_networks import parse_prompt
from modules.types import GenerationRequest

ConditioningFactory = Callable[..., Any]


@dataclass
class PlainConditioning:
    """PreparedConditioning's shape: pipe kwargs, step callback, patch, infotext extras, warnings."""

    pipe_kwargs: dict[str, Any]
    step_callback: Any = None
    patch: Any = field(default_factory=contextlib.nullcontext)
    extra_params: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def plain_conditioning(pipe, prompts: list[str], negative_prompts: list[str], *, steps: int,
                       hires_steps: int | None = None, clip_skip: int = 1, emphasis: str = "Original",
                       embeddings=None, pad_conds: bool = False) -> PlainConditioning:
    """Prompts as plain strings for diffusers' own encoder; clip_skip in A1111 terms (1 = last layer)."""
    kwargs: dict[str, Any] = {"prompt": list(prompts), "negative_prompt": list(negative_prompts)}
    if clip_skip > 1:
        kwargs["clip_skip"] = clip_skip - 1  # diffusers counts skipped layers: A1111's 2 is diffusers' 1
    return PlainConditioning(kwargs)


def default_conditioning_factory() -> ConditioningFactory:
    """prepare_conditioning from modules.prompts when it exists, else plain_conditioning."""
    try:
        from modules.prompts.conditioning import prepare_conditioning
    except ImportError:
        return plain_conditioning
    return prepare_conditioning


def strip_comments(text: str) -> str:
    """Drop `#` comments: whole comment lines and text after `#` on a line (A1111 prompt comments)."""
    try:
        from modules.prompts.parser import strip_comments as parser_strip
    except ImportError:
        parser_strip = None
    if parser_strip is not None:
        return parser_strip(text)
    # Interim until modules.prompts.parser lands: comment lines go entirely, trailing comments to line end.
    text = re.sub(r"(?m)^[ \t]*#[^\n]*(?:\n|$)", "", text)
    return re.sub(r"[ \t]*#[^\n]*", "", text)


def job_prompts(request: GenerationRequest, env) -> tuple[str, str]:
    """(prompt, negative prompt) of the job: saved styles applied, then comments removed when enabled."""
    prompt, negative = request.prompt, request.negative_prompt
    if request.styles and env.styles is not None:
        prompt = env.styles.apply_styles_to_prompt(prompt, request.styles)
        negative = env.styles.apply_negative_styles_to_prompt(negative, request.styles)
    if env.setting("enable_prompt_comments"):
        prompt, negative = strip_comments(prompt), strip_comments(negative)
    return prompt, negative


def tensor_inputs(cond) -> list[str]:
    """Tensor names the conditioning's step callback reads from the pipeline (none without a callback)."""
    if getattr(cond, "step_callback", None) is None:
        return []
    return list(getattr(cond, "callback_tensor_inputs", None) or ("prompt_embeds", "negative_prompt_embeds"))


def without_network_tags(prompt: str) -> str:
    """The prompt with every `<name:args>` tag removed (the extensions that own them read them)."""
    return parse_prompt(prompt)[0] if "<" in prompt else prompt


def prepare(factory: ConditioningFactory, pipe, prompts: list[str], negatives: list[str], env, *, steps: int,
            clip_skip: int, hires_steps: int | None = None):
    """Call the conditioning factory with the job's clip skip (A1111 terms), emphasis and padding settings.
    Extra-network tags (`<lora:x:0.8>`) never reach the text encoder, known networks or not."""
    prompts = [without_network_tags(p) for p in prompts]
    negatives = [without_network_tags(n) for n in negatives]
    return factory(pipe, prompts, negatives, steps=steps, hires_steps=hires_steps, clip_skip=clip_skip,
                   emphasis=str(env.setting("emphasis")), pad_conds=bool(env.setting("pad_cond_uncond")),
                   embeddings=getattr(env, "embeddings", None))
