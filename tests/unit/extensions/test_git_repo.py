"""git operations on a local repository: clone through a file:// URL, commit info, updates, bad input."""
from __future__ import annotations

import os
import subprocess

import pytest

from modules.extensions import git_repo
from modules.extensions.git_repo import GitError

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def upstream(tmp_path):
    repo = tmp_path / "upstream" / "cool-ext.git"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("one\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def test_clone_names_the_folder_from_the_url_and_reports_the_commit(tmp_path, upstream):
    target = git_repo.clone(upstream.as_uri(), tmp_path / "extensions")
    assert target.name == "cool-ext" and (target / "README.md").read_text() == "one\n"
    info = git_repo.repo_info(target)
    assert info.commit_hash == git(upstream, "rev-parse", "HEAD") and info.branch == "main"
    assert info.remote == upstream.as_uri() and info.version == info.commit_hash[:8] and info.commit_date > 0
    assert not any(p.name.startswith(".tmp-") for p in (tmp_path / "extensions").iterdir())


def test_update_pulls_a_new_commit(tmp_path, upstream):
    target = git_repo.clone(upstream.as_uri(), tmp_path / "extensions", name="mine")
    assert git_repo.has_update(target) is False
    (upstream / "README.md").write_text("two\n")
    git(upstream, "commit", "-qam", "second")
    assert git_repo.has_update(target) is True
    info = git_repo.update(target)
    assert info.commit_hash == git(upstream, "rev-parse", "HEAD") and (target / "README.md").read_text() == "two\n"


def test_bad_urls_names_and_existing_folders_are_refused(tmp_path, upstream):
    with pytest.raises(GitError, match="not a git URL"):
        git_repo.clone("--upload-pack=touch /tmp/x", tmp_path)
    with pytest.raises(GitError, match="not a git URL"):
        git_repo.clone("/etc", tmp_path)
    with pytest.raises(GitError, match="bad folder name"):
        git_repo.clone(upstream.as_uri(), tmp_path, name="../escape")
    git_repo.clone(upstream.as_uri(), tmp_path, name="taken")
    with pytest.raises(GitError, match="already exists"):
        git_repo.clone(upstream.as_uri(), tmp_path, name="taken")


def test_a_failed_clone_leaves_no_folder(tmp_path):
    with pytest.raises(GitError, match="git clone failed"):
        git_repo.clone((tmp_path / "nowhere.git").as_uri(), tmp_path / "extensions")
    assert list((tmp_path / "extensions").iterdir()) == []


def test_a_plain_folder_has_empty_info(tmp_path):
    assert git_repo.repo_info(tmp_path) == git_repo.RepoInfo()
