"""What is kept of an exception once a job failed: its type and message, never its frames.

A traceback references every frame between the worker and the `raise`, and each frame its locals: for a
failed generation that is the latents, the UNet activations and the pipeline. Kept on a Job in the history
(or by a log record), they stay alive and the next, smaller job runs out of memory as well.
"""
from __future__ import annotations

import traceback


def safe_str(exc: BaseException) -> str:
    """`str(exc)`, or a stand-in when the exception cannot be printed (its `__str__` raises)."""
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 - any exception may be raised by a foreign __str__
        return f"{safe_type_name(exc)} (its message could not be printed)"
    return text if isinstance(text, str) else safe_type_name(exc)


def safe_type_name(exc: BaseException) -> str:
    """The class name, even for objects whose class lies about it."""
    try:
        return str(type(exc).__name__)
    except BaseException:  # noqa: BLE001
        return "Exception"


def detach_traceback(exc: BaseException) -> str:
    """Format `exc` with its traceback, then free the frames of it and of its causes; returns the text.

    The exception object itself survives (type, message, attributes such as UserInputError.field), so
    callers can still tell a bad value from a crash.
    """
    try:
        text = "".join(traceback.format_exception(exc))
    except BaseException:  # noqa: BLE001 - formatting must never turn one failure into two
        text = f"{safe_type_name(exc)}: {safe_str(exc)}\n"
    for item in _chain(exc):
        tb = item.__traceback__
        if tb is not None:
            traceback.clear_frames(tb)  # frames still running (the caller's own) are left as they are
            item.__traceback__ = None
    return text


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc`, its causes and contexts, and the members of exception groups; each once."""
    seen: set[int] = set()
    out: list[BaseException] = []
    todo = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        out.append(item)
        todo += [item.__cause__, item.__context__]
        is_group = type(item).__name__.endswith("ExceptionGroup")  # no ExceptionGroup before Python 3.11
        members = getattr(item, "exceptions", None) if is_group else None
        if isinstance(members, (tuple, list)):
            todo += [m for m in members if isinstance(m, BaseException)]
    return out
