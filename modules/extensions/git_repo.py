"""git for extensions: clone from a URL, read the commit, check for and pull updates.

Runs the `git` command (no library), never asks for credentials (`GIT_TERMINAL_PROMPT=0`), and has a
time limit on every call. A clone goes into a hidden temporary folder first and is renamed into place
only when it completed, so a failed or interrupted clone never appears as a broken extension.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

GIT_TIMEOUT_S = 300.0
_URL_RE = re.compile(r"^(https?://|ssh://|git://|file://|git@[\w.-]+:)\S+$")
_FOLDER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class GitError(RuntimeError):
    """A git step failed; the message says which step and git's own last line."""


@dataclass(frozen=True)
class RepoInfo:
    """What A1111's /sdapi/v1/extensions reports about a checkout (empty strings when not a git repo)."""

    remote: str = ""
    branch: str = ""
    commit_hash: str = ""
    commit_date: int = 0  # seconds since the epoch
    version: str = ""  # short hash, as A1111 shows


def _git(args: list[str], cwd: Path | None = None, timeout: float = GIT_TIMEOUT_S) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "echo", "LC_ALL": "C"}
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError:
        raise GitError("git is not installed (it is needed to install and update extensions)") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}").splitlines()[-1]
        raise GitError(f"git {args[0]} failed: {last}")
    return done.stdout.strip()


def folder_name_for(url: str) -> str:
    """The folder a URL clones into by default: its last path part without '.git'."""
    tail = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return tail[:-4] if tail.endswith(".git") else tail


def check_url(url: str) -> str:
    url = url.strip()
    if not _URL_RE.match(url):
        raise GitError(f"not a git URL: {url!r} (use https://..., ssh://..., git@host:... or file://...)")
    if url.startswith("-") or any(ch in url for ch in "\n\r\0"):
        raise GitError(f"not a git URL: {url!r}")
    return url


def check_folder_name(name: str) -> str:
    if not _FOLDER_RE.match(name) or name in (".", ".."):
        raise GitError(f"bad folder name {name!r}: letters, digits, '.', '_' and '-' only")
    return name


def clone(url: str, into: Path, *, name: str = "", branch: str = "", timeout: float = GIT_TIMEOUT_S) -> Path:
    """Clone `url` as `into/<name>` (name from the URL when empty); returns the new folder."""
    url = check_url(url)
    name = check_folder_name(name.strip() or folder_name_for(url))
    into = Path(into)
    target = into / name
    if target.exists():
        raise GitError(f"extension folder {target} already exists")
    into.mkdir(parents=True, exist_ok=True)
    temporary = into / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    args = ["clone", "--quiet"]
    if branch.strip():
        args += ["--branch", branch.strip()]
    try:
        _git([*args, "--", url, str(temporary)], timeout=timeout)
        temporary.rename(target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return target


def is_repo(folder: Path) -> bool:
    return (Path(folder) / ".git").exists()


def repo_info(folder: Path) -> RepoInfo:
    """Remote, branch, commit and date of a checkout; RepoInfo() for a plain folder."""
    if not is_repo(folder):
        return RepoInfo()
    try:
        commit, date = _git(["log", "-1", "--format=%H %ct"], cwd=folder, timeout=30).split()
    except (GitError, ValueError):
        return RepoInfo()
    try:
        remote = _git(["config", "--get", "remote.origin.url"], cwd=folder, timeout=30)
    except GitError:
        remote = ""
    try:
        branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd=folder, timeout=30)
    except GitError:
        branch = ""
    return RepoInfo(remote=remote, branch=branch, commit_hash=commit, commit_date=int(date), version=commit[:8])


def fetch(folder: Path, timeout: float = GIT_TIMEOUT_S) -> None:
    _git(["fetch", "--quiet", "origin"], cwd=folder, timeout=timeout)


def upstream_commit(folder: Path) -> str:
    """The commit the current branch tracks (after `fetch`)."""
    return _git(["rev-parse", "@{upstream}"], cwd=folder, timeout=30)


def has_update(folder: Path, timeout: float = GIT_TIMEOUT_S) -> bool:
    """Fetch and say whether the tracked branch has commits the checkout does not."""
    fetch(folder, timeout)
    head = _git(["rev-parse", "HEAD"], cwd=folder, timeout=30)
    upstream = upstream_commit(folder)
    if head == upstream:
        return False
    # Behind when HEAD is an ancestor of upstream; local commits ahead are not "an update".
    try:
        _git(["merge-base", "--is-ancestor", head, upstream], cwd=folder, timeout=30)
    except GitError:
        return False
    return True


def update(folder: Path, timeout: float = GIT_TIMEOUT_S) -> RepoInfo:
    """Fetch and fast-forward to the tracked branch; local changes are never thrown away (refused)."""
    fetch(folder, timeout)
    _git(["merge", "--ff-only", "--quiet", "@{upstream}"], cwd=folder, timeout=timeout)
    return repo_info(folder)
