"""The requirements guard: a request for another torch/gradio is refused before pip runs, and pip itself
cannot replace a core package through a dependency. The venv is checked with `pip freeze` before/after."""
from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from modules.extensions.requirements_guard import (
    check_requirements,
    constraints_text,
    install_requirements,
)

VERSIONS = {"torch": "2.13.0", "gradio": "6.2.0", "numpy": "2.1.0"}


def fake_version(name):
    return VERSIONS.get(name.lower())


def test_core_packages_at_another_version_are_refused_with_the_reason():
    report = check_requirements(["torch==2.0.1", "gradio<5", "numpy>=1.26", "tqdm", "# comment", ""],
                                version_of=fake_version)
    assert report.install == ["tqdm"]
    assert report.satisfied == ["numpy 2.1.0"]
    assert len(report.refused) == 2
    assert "torch==2.0.1 would replace torch 2.13.0" in report.refused[0]
    assert "gradio<5 would replace gradio 6.2.0" in report.refused[1]


@pytest.mark.parametrize("line", ["--index-url https://download.pytorch.org/whl/cu118", "-f ./wheels",
                                  "-r other.txt", "-e git+https://x/y.git", "--extra-index-url=https://x"])
def test_options_that_change_where_packages_come_from_are_refused(line):
    assert not check_requirements([line], version_of=fake_version).ok


def test_core_package_not_installed_or_from_a_url_is_refused():
    report = check_requirements(["torchvision", "torch @ https://example.com/torch.whl"], version_of=fake_version)
    assert len(report.refused) == 2 and "torchvision" in report.refused[0]


def test_markers_for_other_platforms_are_ignored_and_names_normalised():
    report = check_requirements(['pywin32; sys_platform == "win32"', "Pillow_SIMD", "Gradio==6.2.0"],
                                version_of=fake_version)
    assert report.install == ["Pillow_SIMD"] and report.satisfied == ["Gradio 6.2.0"]


def test_constraints_pin_installed_core_packages():
    text = constraints_text(version_of=fake_version)
    assert "torch==2.13.0\n" in text and "gradio==6.2.0\n" in text and "diffusers" not in text


def pip_freeze() -> str:
    return subprocess.run([sys.executable, "-m", "pip", "freeze", "--all"], capture_output=True, text=True,
                          check=True).stdout


def wheel_needing_old_torch(folder):
    """A real wheel of a package that depends on torch==1.0.0 (nothing on this machine can satisfy it)."""
    name, version = "needs_old_torch", "0.1"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(f"{name}/__init__.py", "")
        whl.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                         "Requires-Dist: torch==1.0.0\n")
        whl.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{info}/RECORD", "")
    return path


def test_nothing_in_the_venv_changes_when_an_extension_wants_another_torch(tmp_path):
    before = pip_freeze()
    direct = install_requirements(["torch==2.0.1"])
    assert not direct.ok and "would replace torch" in direct.message
    # A non-core package that pulls another torch: pip sees the pinned core and gives up before installing.
    wheel = wheel_needing_old_torch(tmp_path)
    indirect = install_requirements([f"needs_old_torch @ {wheel.as_uri()}"], timeout=300)
    assert not indirect.ok and "core packages stay as they are" in indirect.message
    assert pip_freeze() == before
