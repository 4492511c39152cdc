"""Extensions as users get them: a local git repository (the "upstream"), cloned or installed by URL."""
from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

# A fixed identity: the test machine may have none configured.
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_TERMINAL_PROMPT": "0"}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def write_files(folder: Path, files: dict[str, str]) -> Path:
    """Write {relative path: text} under `folder` (texts are dedented, so tests can indent them)."""
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return folder


def make_repo(folder: Path, files: dict[str, str] | None = None, *, copy_from: Path | None = None) -> Path:
    """A git repository at `folder` with one commit holding `copy_from`'s files and/or `files`."""
    if copy_from is not None:
        shutil.copytree(copy_from, folder, ignore=shutil.ignore_patterns("__pycache__"))
    folder.mkdir(parents=True, exist_ok=True)
    write_files(folder, files or {})
    git(folder, "init", "-q", "-b", "main")
    commit(folder, "first")
    return folder


def commit(folder: Path, message: str) -> str:
    """Commit everything in the work tree; returns the new commit hash."""
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", message)
    return git(folder, "rev-parse", "HEAD")


def clone(url: str, into: Path) -> Path:
    """`git clone <url>` inside `into`, as a user installs an extension by hand."""
    into.mkdir(parents=True, exist_ok=True)
    git(into, "clone", "-q", url)
    return into / url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
