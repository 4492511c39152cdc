"""--xformers installs xformers at start when it is missing, matched to the installed torch (A1111's launcher
does the same with its pinned version), or says why not with the command to run; --reinstall-xformers and
--reinstall-torch as in A1111. pip, the torch probe and the xformers check are injected: no test runs pip."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from modules import install
from modules.flags import parse_flags
from modules.install import TorchBuild, ensure_xformers, probe_torch, xformers_pip_args

CUDA = TorchBuild("2.13.0+cu128", cuda="12.8", gpu_available=True)
CPU = TorchBuild("2.13.0+cpu")
CUDA_NO_GPU = TorchBuild("2.13.0", cuda="12.8", gpu_available=False)
ROCM = TorchBuild("2.13.0+rocm6.4", hip="6.4", gpu_available=True)
MATCHED = ["pip", "install", "xformers", "torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cu128"]


class FakePip:
    """Records pip calls; a successful `install` makes xformers importable."""

    def __init__(self, status: int = 0, installed: bool = False):
        self.calls: list[list[str]] = []
        self.status, self.installed = status, installed

    def __call__(self, args: list[str]) -> int:
        self.calls.append(args)
        if args[1] == "uninstall":
            self.installed = False
        elif self.status == 0:
            self.installed = True
        return self.status if args[1] == "install" else 0

    def present(self) -> bool:
        return self.installed


def run(torch: TorchBuild | None, pip: FakePip, environ=None, **kwargs):
    return ensure_xformers(wanted=True, environ=environ or {}, present=pip.present, probe=lambda: torch, pip=pip,
                           **kwargs)


def test_missing_xformers_on_cuda_is_installed_for_the_installed_torch(capsys):
    pip = FakePip()
    line = run(CUDA, pip)
    assert pip.calls == [MATCHED] and pip.installed
    assert line == "Installed xformers for torch 2.13.0+cu128"
    assert "Installing xformers for torch 2.13.0+cu128" in capsys.readouterr().out


def test_xformers_package_and_torch_index_url_as_in_a1111():
    assert xformers_pip_args(CUDA, {"XFORMERS_PACKAGE": "xformers==0.0.31"}) == [
        "pip", "install", "-U", "-I", "--no-deps", "xformers==0.0.31"]
    assert xformers_pip_args(CUDA, {"TORCH_INDEX_URL": "https://mirror/cu126"})[-2:] == [
        "--index-url", "https://mirror/cu126"]
    pip = FakePip()
    run(ROCM, pip, {"XFORMERS_PACKAGE": "xformers-rocm==1"})  # a GPU that is not CUDA: only the user's package
    assert pip.calls == [["pip", "install", "-U", "-I", "--no-deps", "xformers-rocm==1"]]


def test_present_xformers_is_left_alone_and_torch_not_probed():
    pip = FakePip(installed=True)

    def probe():
        raise AssertionError("no probe needed")

    assert ensure_xformers(wanted=True, environ={}, present=pip.present, probe=probe, pip=pip) is None
    assert pip.calls == []


def test_reinstall_xformers_uninstalls_then_installs_and_needs_xformers_flag():
    pip = FakePip(installed=True)
    run(CUDA, pip, reinstall=True)
    assert pip.calls == [["pip", "uninstall", "-y", "xformers"], MATCHED]
    idle = FakePip()
    line = ensure_xformers(wanted=False, reinstall=True, present=idle.present, probe=lambda: CUDA, pip=idle)
    assert line == "note: --reinstall-xformers does nothing without --xformers" and idle.calls == []
    assert ensure_xformers(wanted=False, present=idle.present, probe=lambda: CUDA, pip=idle) is None


@pytest.mark.parametrize("torch, why", [
    (CPU, "this torch (2.13.0+cpu) is a CPU-only build"),
    (CUDA_NO_GPU, "torch 2.13.0 cannot use a CUDA GPU on this machine"),
    (ROCM, "this torch is a ROCm build (ROCm 6.4); set XFORMERS_PACKAGE"),
])
def test_no_cuda_says_why_and_names_the_command_without_installing(torch, why):
    pip = FakePip()
    line = run(torch, pip)
    assert pip.calls == []
    assert line.startswith("warning: --xformers needs CUDA, but ") and why in line
    assert "using PyTorch SDP attention" in line and f"{sys.executable} -m pip install xformers" in line


def test_failed_install_is_a_clear_line_not_an_exit():
    pip = FakePip(status=1)
    line = run(CUDA, pip)
    assert "could not install xformers" in line and "using PyTorch SDP attention" in line
    assert install.command_line(MATCHED) in line


def test_skip_install_names_the_command_and_missing_torch_says_so():
    pip = FakePip()
    line = run(CUDA, pip, may_install=False)
    assert pip.calls == [] and "--skip-install" in line and install.command_line(MATCHED) in line
    assert "torch is missing or does not import" in run(None, pip)


def test_probe_reads_the_child_process_answer():
    def answer(stdout: str, code: int = 0):
        return lambda args, **kw: subprocess.CompletedProcess(args, code, stdout, "")

    data = {"version": "2.13.0+cu128", "cuda": "12.8", "hip": None, "available": True}
    assert probe_torch(answer("some warning\n" + json.dumps(data))) == CUDA
    assert probe_torch(answer("", 1)) is None and probe_torch(answer("not json")) is None


def test_reinstall_flags_parse_and_reinstall_torch_reruns_the_torch_command(tmp_path, monkeypatch):
    flags = parse_flags(["--xformers", "--reinstall-xformers", "--reinstall-torch"], environ={})
    assert flags.xformers and flags.reinstall_xformers and flags.reinstall_torch
    monkeypatch.delenv("TORCH_COMMAND", raising=False)
    calls: list[list[str]] = []
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pillow\n")
    install.prepare_environment(tmp_path, [requirements], pip=lambda a, what: calls.append(a), prefix=tmp_path)
    calls.clear()  # the stamp now says "done": a second start installs nothing, torch being present
    install.prepare_environment(tmp_path, [requirements], pip=lambda a, what: calls.append(a), prefix=tmp_path)
    assert calls == []
    install.prepare_environment(tmp_path, [requirements], pip=lambda a, what: calls.append(a), prefix=tmp_path,
                                reinstall_torch=True)
    assert calls[0] == ["pip", "install", "torch==2.13.0"]
