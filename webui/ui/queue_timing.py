"""How often Gradio's queue loops wake the server's event loop.

Gradio 6 (queueing.Queue) looks for new events every 1 ms when it has nothing to start (50 ms on Windows)
and for gr.Progress updates every 10 ms: about 1100 wake-ups a second on the event loop, at all times. On
the 2-core box that was 6-9 % of a core with no page open and no job running, taken from the sampler's
threads during every generation (each wake-up also takes the GIL from the job's Python code). Our Generate
handlers start their work on the first wake-up and stream through our job queue, so a new event starting up
to 50 ms later is not seen next to a job's seconds.
"""
from __future__ import annotations

# Seconds between Gradio's looks for events to start / progress updates to send (Gradio's Windows values).
QUEUE_IDLE_SLEEP = 0.05
PROGRESS_IDLE_SLEEP = 0.05


def calm_queue(queue) -> None:
    """Make Gradio's queue `queue` (blocks._queue) poll every 50 ms instead of every 1 ms / 10 ms."""
    queue.sleep_when_free = max(QUEUE_IDLE_SLEEP, float(getattr(queue, "sleep_when_free", 0.0)))
    queue.progress_update_sleep_when_free = max(
        PROGRESS_IDLE_SLEEP, float(getattr(queue, "progress_update_sleep_when_free", 0.0)))
