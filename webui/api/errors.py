"""The API's error answers: A1111's JSON shape {error, detail, body, errors} with a proper status.

What a client may see: the message of a user error (a bad value, an unreadable checkpoint file: the user
can act on it). What it may not: the text of any other exception (paths, internals), which goes to the log
under an id the answer names.
"""
from __future__ import annotations

from fastapi.responses import JSONResponse

from modules.extensions.hooks import ExtensionHookError
from modules.pipelines.loading import CheckpointError
from modules.settings import SettingsError
from modules.types import UserInputError

# Errors whose message is written for the user and shown verbatim.
# An extension the request asked for that failed: the message names it and the hook (no internals).
USER_ERRORS = (UserInputError, SettingsError, CheckpointError, ExtensionHookError)
INTERNAL_ERROR = "InternalServerError"


class ApiError(Exception):
    """Raised by routes for an answer other than 200; `app.install_api` turns it into the error shape."""

    def __init__(self, status: int, error: str, detail: str = "", headers: dict[str, str] | None = None):
        super().__init__(detail or error)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = dict(headers or {})


def error_response(status: int, error: str, detail: str = "", body: str = "", errors: str = "") -> JSONResponse:
    """A1111's error shape: {error, detail, body, errors}."""
    return JSONResponse(status_code=status, content={"error": error, "detail": detail, "body": body,
                                                     "errors": errors or detail})


def internal_error_detail(error_id: str) -> str:
    return f"internal server error; the server log has the details (error id {error_id})"


def public_job_error(job) -> str | None:
    """The failed job's error as a client may see it: a user error's message, else a fixed text naming the
    job id, which the queue's log line of the failure carries."""
    if job.error is None:
        return None
    if isinstance(job.exception, USER_ERRORS):
        return job.error
    if (getattr(job, "error_type", None) or type(job.exception).__name__) == "OutOfMemoryError":
        return f"out of memory on the device: try a smaller size or batch (error id {job.id})"
    return internal_error_detail(job.id)
