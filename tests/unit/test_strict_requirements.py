"""Under tests/run.sh nothing the README promises is skipped: missing tools fail, as does a failed install."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import needs

ROOT = Path(__file__).resolve().parents[2]


def test_missing_skips_on_a_bare_machine(monkeypatch):
    monkeypatch.delenv(needs.STRICT_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium"):
        needs.missing("chromium is not installed")


def test_missing_fails_when_strict(monkeypatch):
    monkeypatch.setenv(needs.STRICT_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="chromium is not installed .*WEBUI_TESTS_STRICT=1"):
        needs.missing("chromium is not installed")


def _fake_tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/usr/bin/env bash\n" + body + "\n")
    path.chmod(0o755)


def _run_script(tmp_path: Path, apt_rc: int, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run a copy of tests/run.sh with fake python/dpkg/apt-get: every Debian package looks missing."""
    repo = tmp_path / "repo"
    (repo / "tests").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "run.sh", repo / "tests" / "run.sh")
    shutil.copy(ROOT / "tests" / "requirements.txt", repo / "tests" / "requirements.txt")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    report = tmp_path / "pytest-env.txt"
    # python: launch.py and pip succeed; `-m pytest` records the strict flag it was given.
    record = f'echo "strict=$WEBUI_TESTS_STRICT" > {report}'
    _fake_tool(bin_dir, "python", f'if [ "$2" = pytest ]; then {record}; fi')
    _fake_tool(bin_dir, "dpkg", "exit 1")
    _fake_tool(bin_dir, "apt-get", f"exit {apt_rc}")
    _fake_tool(bin_dir, "sudo", '"$@"')
    env = {k: v for k, v in os.environ.items() if k != needs.STRICT_ENV}
    env.update({"PATH": f"{bin_dir}:/usr/bin:/bin", "VIRTUAL_ENV": str(tmp_path), **(environ or {})})
    done = subprocess.run(["bash", str(repo / "tests" / "run.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    return done.returncode, done.stderr, report.read_text().strip() if report.exists() else ""


def test_run_sh_stops_loudly_when_the_install_fails(tmp_path):
    rc, stderr, pytest_ran = _run_script(tmp_path, apt_rc=100)
    assert rc != 0 and "could not install" in stderr and "libvulkan1" in stderr
    assert pytest_ran == ""  # the suite never starts on a machine missing what it promised


def test_run_sh_runs_the_suite_strict_after_installing(tmp_path):
    rc, _, pytest_ran = _run_script(tmp_path, apt_rc=0)
    assert rc == 0 and pytest_ran == "strict=1"


def test_run_sh_lenient_mode_is_explicit(tmp_path):
    rc, stderr, pytest_ran = _run_script(tmp_path, apt_rc=100, environ={needs.STRICT_ENV: "0"})
    assert rc == 0 and "will be skipped" in stderr and pytest_ran == "strict=0"
