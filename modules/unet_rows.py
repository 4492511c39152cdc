"""Batch rows of a UNet call: pick rows of its arguments, read and replace the sample of its result.

Wrappers around `unet.forward` that run fewer rows than diffusers passed (AND's sub-prompt chunks in
modules/prompts/composable.py, the skipped uncond half in modules/generation/guidance.py) need the same
three pieces; diffusers returns a tuple or an output object depending on `return_dict`.
"""
from __future__ import annotations

from typing import Any

import torch


def take_rows(value: Any, index: torch.Tensor, rows: int) -> Any:
    """Rows `index` of every batch-sized tensor inside `value` (dicts, lists and tuples walked)."""
    if isinstance(value, torch.Tensor):
        if value.ndim >= 1 and value.shape[0] == rows:
            return value.index_select(0, index.to(value.device))
        return value
    if isinstance(value, dict):
        return {k: take_rows(v, index, rows) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(take_rows(v, index, rows) for v in value)
    return value


def sample_of(result: Any) -> torch.Tensor:
    """The predicted sample of a UNet call's result (tuple, output object or bare tensor)."""
    if isinstance(result, tuple):
        return result[0]
    return result.sample if hasattr(result, "sample") else result


def with_sample(result: Any, sample: torch.Tensor) -> Any:
    """`result` in its own form with `sample` in place of its predicted sample."""
    if isinstance(result, tuple):
        return (sample, *result[1:])
    if hasattr(result, "sample"):
        return type(result)(sample=sample)
    return sample
