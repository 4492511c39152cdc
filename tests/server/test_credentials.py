"""Credentials from flags and files: one flag (--auth / --auth-path) protects the UI and the API together,
--gradio-auth(-path) and --api-auth(-path) protect one side each; a malformed entry is reported without
echoing what was typed (it may be the password); the start-up warns when the network can reach an open side."""
from __future__ import annotations

import pytest

from modules.flags import Flags, parse_auth, parse_flags, resolve_credentials
from tests.helpers.server import run_launch
from webui.server import security_warnings


@pytest.mark.parametrize("spec, words", [
    ("alice:pw1,hunter2-the-password", ["--api-auth", "entry 2", "USER:PASS"]),
    (":hunter2-the-password", ["--api-auth", "entry 1", "user name"]),
])
def test_a_malformed_entry_is_reported_without_the_password(spec, words):
    with pytest.raises(ValueError) as err:
        parse_auth(spec, "--api-auth")
    message = str(err.value)
    assert "hunter2" not in message
    for word in words:
        assert word in message


def test_launch_reports_a_malformed_entry_without_the_password(tmp_path):
    out = run_launch(["--skip-install", "--nowebui", "--data-dir", str(tmp_path), "--gradio-auth", "sup3rsecret"])
    assert out.returncode == 1
    assert "--gradio-auth" in out.stderr and "sup3rsecret" not in out.stderr + out.stdout


def test_credentials_from_files_and_the_combined_flag(tmp_path):
    ui_file = tmp_path / "ui.txt"
    ui_file.write_text("ann:one\n\n# a comment\nbob:two,cy:three\n")
    api_file = tmp_path / "api.txt"
    api_file.write_text("svc:key:with:colons\n")
    both = tmp_path / "both.txt"
    both.write_text("root:rootpw\n")
    flags = parse_flags(["--gradio-auth-path", str(ui_file), "--api-auth-path", str(api_file),
                         "--auth", "dana:four", "--auth-path", str(both)], environ={})
    creds = resolve_credentials(flags)
    assert set(creds.ui) == {("ann", "one"), ("bob", "two"), ("cy", "three"), ("dana", "four"), ("root", "rootpw")}
    assert set(creds.api) == {("svc", "key:with:colons"), ("dana", "four"), ("root", "rootpw")}
    only_auth = resolve_credentials(parse_flags(["--auth", "u:p"], environ={}))
    assert only_auth.ui == only_auth.api == (("u", "p"),)


def test_a_missing_or_bad_credentials_file_is_one_message(tmp_path):
    with pytest.raises(ValueError, match="--api-auth-path.*not found"):
        resolve_credentials(Flags(api_auth_path=str(tmp_path / "nope.txt")))
    bad = tmp_path / "bad.txt"
    bad.write_text("ok:fine\nsecretwithoutcolon\n")
    with pytest.raises(ValueError) as err:
        resolve_credentials(Flags(gradio_auth_path=str(bad)))
    assert "line 2" in str(err.value) and "secretwithoutcolon" not in str(err.value)


@pytest.mark.parametrize("argv, expected", [
    (["--listen", "--api"], ["without a password", "--auth"]),
    (["--listen", "--api", "--api-auth", "u:p"], ["UI is open", "--auth"]),
    (["--listen", "--api", "--gradio-auth", "u:p"], ["API", "open", "--auth"]),
    (["--listen", "--nowebui"], ["without a password"]),
    (["--listen", "--api", "--auth", "u:p"], []),
    (["--api"], []),
    (["--listen", "--nowebui", "--api-auth", "u:p"], []),
])
def test_startup_warnings_name_what_the_network_can_reach(argv, expected):
    flags = parse_flags(argv, environ={})
    warnings = security_warnings(flags, resolve_credentials(flags))
    text = " ".join(warnings)
    assert bool(warnings) == bool(expected), warnings
    for word in expected:
        assert word in text


def test_help_explains_the_auth_flags():
    out = run_launch(["--help"])
    for flag in ("--auth ", "--auth-path", "--gradio-auth-path", "--api-auth-path", "--cors-allow-origins"):
        assert flag in out.stdout, flag
    assert "UI and the API" in " ".join(out.stdout.split())
