"""When each sampling step ends, for ours and for plain diffusers: per-step time without the fixed costs.

The slope between a short and a long run (the older method) subtracts two noisy end-to-end times, so one
load spike during either run moves it by tens of percent on this shared 2-core machine. The median of the
intervals between step ends inside one run needs no subtraction and shrugs off a spike in a few steps.
Both sides note the time at the same point, right after the scheduler's step: our job context's `step()`
and diffusers' `callback_on_step_end`. The first step (warm-up, prompt encoding before it) is not an
interval, so it never counts.
"""
from __future__ import annotations

import statistics
import time

from modules.jobs.progress import JobContext


class StepClock(JobContext):
    """A job context that also notes when each step ended (perf_counter seconds in `ends`)."""

    def __init__(self, job_id: str = "bench") -> None:
        super().__init__(job_id)
        self.ends: list[float] = []

    def step(self, step_index, latents=None, **kwargs) -> None:
        self.ends.append(time.perf_counter())
        super().step(step_index, latents, **kwargs)


def diffusers_step_clock(ends: list[float]):
    """A `callback_on_step_end` for a diffusers pipeline call that appends to `ends`."""

    def on_step_end(pipe, step, timestep, kwargs):
        ends.append(time.perf_counter())
        return kwargs

    return on_step_end


def step_seconds(ends: list[float], how: str = "median") -> float:
    """Seconds per step of one run from its step-end times ("median", or "mean" where the steps of a run
    differ on purpose, e.g. Skip Early CFG)."""
    intervals = [b - a for a, b in zip(ends, ends[1:])]
    if not intervals:
        raise ValueError("a run needs at least 2 steps for a step interval")
    return statistics.median(intervals) if how == "median" else statistics.fmean(intervals)
