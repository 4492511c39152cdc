"""The queue behind the API: /progress reports the running job, interrupt and skip act on it, many clients
wait in order instead of failing, and the job API (submit, poll, preview, result, cancel one job)."""
from __future__ import annotations

import concurrent.futures
import hashlib
import itertools
import json
import threading
import time

import pytest
import requests

from tests.api.conftest import SMALL, decode, params_of

pytestmark = pytest.mark.server

LONG = {"prompt": "long", "width": 64, "height": 64, "steps": 600}  # seconds on the demo model, not minutes


def wait_until(predicate, timeout: float = 60.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError("condition not met in time")


def test_progress_reports_running_job_and_interrupt_keeps_serving(api, server):
    results = {}
    thread = threading.Thread(target=lambda: results.update(r=api.txt2img(seed=1, **LONG)))
    thread.start()
    try:
        progress = wait_until(lambda: (p := api.get_progress())["state"]["sampling_step"] >= 6 and
                              p["current_image"] and p)
        state = progress["state"]
        assert set(state) >= {"skipped", "interrupted", "job", "job_count", "job_timestamp", "job_no",
                              "sampling_step", "sampling_steps"}
        assert state["sampling_steps"] == 600 and state["job_count"] == 1 and state["job_no"] == 0
        assert 0 < progress["progress"] < 1 and progress["eta_relative"] > 0
        assert state["job"].startswith("txt2img") and len(state["job_timestamp"]) == 14
        assert decode(progress["current_image"]).size[0] > 0  # live preview as base64 PNG
        assert api.interrupt() == {}
        thread.join(60)
    finally:
        api.interrupt()
        thread.join(60)
    # A1111 answers an interrupted request normally: the half-denoised image, marked as interrupted.
    result = results["r"]
    assert result.info["interrupted"] is True and [im.size for im in result.images] in ([], [(64, 64)])
    idle = api.get_progress()
    assert idle["progress"] == 0 and idle["state"]["job_count"] == 0
    assert api.txt2img(prompt="after", **SMALL).image.size == (64, 64)


def test_skip_abandons_the_current_batch_only(api):
    results = {}
    thread = threading.Thread(target=lambda: results.update(r=api.txt2img(seed=10, n_iter=2, **LONG)))
    thread.start()
    try:
        wait_until(lambda: api.get_progress()["state"]["sampling_step"] >= 3)
        assert api.skip() == {}
        # The job goes on with its second batch, which is stopped by an interrupt once it started.
        wait_until(lambda: (s := api.get_progress()["state"])["job_no"] == 1 and s["sampling_step"] >= 2)
    finally:
        api.interrupt()
        thread.join(60)
    assert results["r"].info["interrupted"] is True


def test_twenty_concurrent_requests_all_succeed_in_order(server):
    url = server.url + "/sdapi/v1/txt2img"

    def one(i: int):
        body = {"prompt": "many", "seed": 500 + i, **SMALL}
        response = requests.post(url, json=body, timeout=300)
        return i, response

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one, range(20)))
    digests = set()
    jobs = []
    for i, response in answers:
        assert response.status_code == 200, response.text
        body = response.json()
        assert json.loads(body["info"])["all_seeds"] == [500 + i]
        image = decode(body["images"][0])
        assert image.size == (64, 64) and params_of(image)["Seed"] == str(500 + i)
        digests.add(hashlib.sha256(image.tobytes()).hexdigest())
        jobs.append(requests.get(f"{server.url}/sdapi/v1/jobs/{response.headers['X-Job-Id']}", timeout=10).json())
    assert len(digests) == 20  # distinct seeds, distinct images
    # First come, first served: in the order they were queued, each started after the one before ended.
    jobs.sort(key=lambda j: j["created_at"])
    for earlier, later in itertools.pairwise(jobs):
        assert later["started_at"] >= earlier["finished_at"]
        assert all(j["state"] == "done" for j in (earlier, later))


def test_job_api_submit_three_cancel_the_second(server):
    base = server.url + "/sdapi/v1/jobs"
    blocker = requests.post(base + "/txt2img", json={"seed": 1, **LONG}, timeout=10).json()
    submitted = [requests.post(base + "/txt2img", json={"prompt": f"job {i}", "seed": 20 + i, **SMALL},
                               timeout=10) for i in range(3)]
    assert [r.status_code for r in submitted] == [202, 202, 202]
    ids = [r.json()["id"] for r in submitted]
    assert submitted[1].headers["Location"].endswith(ids[1])
    assert [r.json()["state"] for r in submitted] == ["queued"] * 3
    assert [r.json()["position"] for r in submitted] == [1, 2, 3]

    cancelled = requests.delete(f"{base}/{ids[1]}", timeout=10).json()
    assert cancelled["state"] == "cancelled"
    # The running job is interrupted through the job API too: it alone stops.
    wait_until(lambda: requests.get(f"{base}/{blocker['id']}", timeout=10).json()["state"] == "running")
    preview = wait_until(lambda: (p := requests.get(f"{base}/{blocker['id']}/preview", timeout=10).json())["image"]
                         and p)
    assert decode(preview["image"]).size[0] > 0
    status = requests.get(f"{base}/{blocker['id']}", timeout=10).json()
    assert status["sampling_steps"] == 600 and 0 < status["progress"] < 1
    assert requests.post(f"{base}/{blocker['id']}/cancel", timeout=10).status_code == 200

    for index in (0, 2):
        result = requests.get(f"{base}/{ids[index]}/result", params={"wait": 60}, timeout=90)
        assert result.status_code == 200
        image = decode(result.json()["images"][0])
        assert params_of(image)["Prompt"] == f"job {index}" and image.size == (64, 64)
    assert requests.get(f"{base}/{ids[1]}", timeout=10).json()["state"] == "cancelled"
    assert requests.get(f"{base}/{blocker['id']}", timeout=10).json()["state"] == "interrupted"
    listed = {j["id"]: j["state"] for j in requests.get(base, timeout=10).json()["jobs"]}
    assert [listed[i] for i in ids] == ["done", "cancelled", "done"]


def test_job_api_result_waits_and_unknown_ids(server):
    base = server.url + "/sdapi/v1/jobs"
    job = requests.post(base + "/txt2img", json={"seed": 3, **SMALL}, timeout=10).json()
    result = requests.get(f"{base}/{job['id']}/result", params={"wait": 60}, timeout=90)
    assert result.status_code == 200 and json.loads(result.json()["info"])["all_seeds"] == [3]
    missing = requests.get(f"{base}/nope", timeout=10)
    assert missing.status_code == 404 and set(missing.json()) == {"error", "detail", "body", "errors"}
    assert requests.delete(f"{base}/nope", timeout=10).status_code == 404
    # A job still queued answers 202 with its status after the wait.
    blocker = requests.post(base + "/txt2img", json=LONG, timeout=10).json()
    queued = requests.post(base + "/txt2img", json=SMALL, timeout=10).json()
    early = requests.get(f"{base}/{queued['id']}/result", params={"wait": 0.2}, timeout=10)
    assert early.status_code == 202 and early.json()["state"] == "queued"
    requests.delete(f"{base}/{queued['id']}", timeout=10)
    requests.delete(f"{base}/{blocker['id']}", timeout=10)
