"""--listen as a user starts it: the log warns that no password is set, and requests naming this machine by
any host name are served (without --listen they are refused; see tests/api/test_http_guards.py)."""
from __future__ import annotations

import urllib.request

import pytest

from tests.helpers.server import start_server

pytestmark = pytest.mark.server


def test_listen_without_a_password_warns_and_serves_other_host_names(tmp_path):
    server = start_server(["--nowebui", "--listen", "--data-dir", str(tmp_path), "--no-download-sd-model"], tmp_path,
                          ready_path="/sdapi/v1/sd-models")
    try:
        request = urllib.request.Request(server.url + "/sdapi/v1/samplers", headers={"Host": "gpu-box.lan"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
        log = server.log()
        assert "--listen without a password" in log and "--auth" in log
    finally:
        server.stop()
