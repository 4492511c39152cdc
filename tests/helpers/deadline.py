"""Run a call under a wall-clock watchdog and report the CPU time it took.

A quadratic parser on 1 MB of text takes hours: the watchdog (SIGALRM, main thread only; `re` checks for
signals while it matches) turns that into a failure after a few seconds. The time returned is the calling
thread's CPU time, so a busy shared machine does not make a linear parser look slow, and the garbage
collector is paused meanwhile: late in a full suite the heap is large, and a collection that happens to
fall into the timed call cost 0.8 s there (1.78 s measured against 0.3 s alone).
"""
from __future__ import annotations

import gc
import signal
import time
from collections.abc import Callable
from typing import Any


class TooSlow(AssertionError):
    pass


def cpu_seconds(fn: Callable[[], Any], *, give_up_after: float = 20.0) -> tuple[float, Any]:
    """(CPU seconds of this thread, result) of `fn()`; raises TooSlow after `give_up_after` wall seconds."""
    def alarm(signum, frame):
        raise TooSlow(f"still running after {give_up_after} s")

    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, give_up_after)
    start = time.thread_time()
    try:
        result = fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if was_enabled:
            gc.enable()
    return time.thread_time() - start, result
