"""Internal errors reach the log, not the client: an unexpected exception is answered 500 with a fixed message
and an error id that the log line carries too; a job that failed on an internal error reports the same kind
of message; user errors (bad values, a bad checkpoint file) keep their specific message. In-process."""
from __future__ import annotations

import logging

import pytest

from modules.jobs.queue import JobQueue
from modules.pipelines.loading import CheckpointError
from modules.types import UserInputError
from tests.api.inprocess import build_app, build_ctx, local_client
from webui.api.calls import raise_for_job
from webui.api.errors import ApiError

SECRET = "/home/alice/private/models secret-token-123"


@pytest.fixture(scope="module")
def app_ctx(tmp_path_factory):
    ctx = build_ctx(tmp_path_factory.mktemp("errors"))
    app = build_app(ctx)

    def boom():
        raise RuntimeError(f"cannot open {SECRET}")

    # A route like an extension's: the app's error handler covers every route.
    app.add_api_route("/sdapi/v1/test-boom", boom, methods=["GET"])
    with local_client(app, raise_server_exceptions=False) as client:
        yield client, ctx
    ctx.close()


def test_an_unexpected_exception_is_a_fixed_message_with_an_error_id(app_ctx, caplog):
    client, ctx = app_ctx
    with caplog.at_level(logging.ERROR, logger="webui.api"):
        answer = client.get("/sdapi/v1/test-boom")
    assert answer.status_code == 500
    body = answer.json()
    assert "secret" not in answer.text and "alice" not in answer.text and "RuntimeError" not in answer.text
    assert body["error"] == "InternalServerError" and "error id" in body["detail"]
    error_id = body["detail"].rsplit(" ", 1)[-1].strip(")")
    logged = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert error_id in logged and "secret-token-123" in caplog.text


def _failed_job(exc: BaseException):
    jobs = JobQueue()
    try:
        def fail(job_ctx):
            raise exc

        job = jobs.submit("test", fail)
        assert job.wait(10)
    finally:
        jobs.shutdown()
    return job


def test_a_job_that_failed_internally_answers_without_the_exception_text():
    job = _failed_job(RuntimeError(f"CUDA error at {SECRET}"))
    with pytest.raises(ApiError) as err:
        raise_for_job(job)
    assert err.value.status == 500 and "secret" not in err.value.detail and job.id in err.value.detail


@pytest.mark.parametrize("exc, status", [(UserInputError("width: 7 is not a multiple of 8"), 422),
                                         (CheckpointError("broken.safetensors: not a checkpoint"), 500)])
def test_user_errors_keep_their_message(exc, status):
    with pytest.raises(ApiError) as err:
        raise_for_job(_failed_job(exc))
    assert err.value.status == status and str(exc) in err.value.detail


def test_job_status_shows_a_fixed_message_for_an_internal_failure(app_ctx):
    client, ctx = app_ctx

    def fail(job_ctx):
        raise RuntimeError(f"cannot open {SECRET}")

    job = ctx.jobs.submit("test-fail", fail)
    assert job.wait(10)
    status = client.get(f"/sdapi/v1/jobs/{job.id}").json()
    assert status["state"] == "failed" and status["error"] and "secret" not in status["error"]
    listed = {j["id"]: j for j in client.get("/sdapi/v1/jobs").json()["jobs"]}
    assert "secret" not in (listed[job.id]["error"] or "")
