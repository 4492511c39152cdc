"""The API's error answers: A1111's JSON shape {error, detail, body, errors} with a proper status."""
from __future__ import annotations

from fastapi.responses import JSONResponse


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
