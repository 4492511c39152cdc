"""What the Extensions tab and API do to installed extensions: install from a git URL, update, check
for updates, enable/disable, delete, and the list of available extensions.

Install and update change code that runs in this process, so with `--listen` they are refused unless
`--enable-insecure-extension-access` (as A1111). Changes take effect after a restart of the UI; the
enabled set is the `disabled_extensions` setting in config.json.
"""
from __future__ import annotations

import json
import logging
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modules.extensions import git_repo
from modules.extensions.git_repo import GitError
from modules.extensions.loader import ExtensionInfo, ExtensionRoot, discover
from modules.extensions.manifest import ManifestError, read_manifest
from modules.extensions.requirements_guard import install_requirements, read_requirements_file

log = logging.getLogger("webui.extensions")

DISABLED_SETTING = "disabled_extensions"
INDEX_TIMEOUT_S = 10.0


class ExtensionActionError(RuntimeError):
    """An install/update/delete that cannot be done; the message says why and is shown verbatim."""


@dataclass
class InstallResult:
    name: str
    path: Path
    message: str


def extension_roots(paths) -> list[ExtensionRoot]:
    """The project's built-in folder, then the data dir's extensions folder when it is another one."""
    builtin = Path(paths.builtin_extensions_dir)
    roots = [ExtensionRoot(builtin, builtin=True)]
    user = Path(paths.extensions_dir)
    if user.resolve() != builtin.resolve():
        roots.append(ExtensionRoot(user))
    return roots


def install_dir(paths) -> Path:
    """Where new extensions go: the data dir's extensions/ (which is the project's own by default)."""
    return Path(paths.extensions_dir)


def disabled_names(settings) -> list[str]:
    """The disabled_extensions setting ([] before the extension system registered it)."""
    try:
        return list(settings.get(DISABLED_SETTING) or [])
    except ValueError:  # SettingsError: not registered in this context
        return []


def list_extensions(paths, settings, flags) -> list[ExtensionInfo]:
    return discover(extension_roots(paths), disabled=disabled_names(settings),
                    disable_all=bool(getattr(flags, "disable_all_extensions", False)),
                    disable_extra=bool(getattr(flags, "disable_extra_extensions", False)))


def check_access(flags) -> None:
    """Refuse code-changing actions on a listening server unless explicitly allowed (A1111's rule)."""
    if getattr(flags, "listen", False) and not getattr(flags, "enable_insecure_extension_access", False):
        raise ExtensionActionError("extension installs and updates are disabled because the server listens "
                                   "on the network (--listen); restart with --enable-insecure-extension-access "
                                   "to allow them")


def install_from_url(paths, flags, url: str, *, branch: str = "", name: str = "") -> InstallResult:
    """git clone into extensions/, then install the requirements behind the guard; on a refused
    requirement the clone is removed again so nothing half-installed stays."""
    check_access(flags)
    try:
        target = git_repo.clone(url, install_dir(paths), name=name, branch=branch)
    except GitError as exc:
        raise ExtensionActionError(str(exc)) from None
    try:
        message = _install_requirements(target)
    except ExtensionActionError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    log.info("Installed extension %s from %s", target.name, url)
    return InstallResult(target.name, target, f"installed {target.name}{': ' + message if message else ''}; "
                                               "restart the UI to load it")


def _install_requirements(folder: Path) -> str:
    requirements = read_requirements_file(folder / "requirements.txt")
    try:
        manifest = read_manifest(folder)
    except ManifestError as exc:
        raise ExtensionActionError(str(exc)) from None
    if manifest is not None:
        requirements += list(manifest.requirements)
    if not requirements:
        return ""
    result = install_requirements(requirements)
    if not result.ok:
        raise ExtensionActionError(f"{folder.name}: requirements {result.message}")
    return result.message


def find(paths, settings, flags, name: str) -> ExtensionInfo:
    for info in list_extensions(paths, settings, flags):
        if info.name == name:
            return info
    raise ExtensionActionError(f"no extension named {name!r}")


def update(paths, settings, flags, name: str) -> str:
    check_access(flags)
    info = find(paths, settings, flags, name)
    if not git_repo.is_repo(info.path):
        raise ExtensionActionError(f"{name} is not a git checkout; it cannot be updated")
    before = git_repo.repo_info(info.path).commit_hash
    try:
        after = git_repo.update(info.path)
    except GitError as exc:
        raise ExtensionActionError(f"{name}: {exc}") from None
    if after.commit_hash == before:
        return f"{name} is up to date"
    message = _install_requirements(info.path)
    return f"{name} updated to {after.version}{': ' + message if message else ''}; restart the UI to load it"


def check_updates(paths, settings, flags, names: list[str] | None = None) -> dict[str, str]:
    """name -> 'behind' / 'latest' / an error message, for every git checkout (or the given names)."""
    out = {}
    for info in list_extensions(paths, settings, flags):
        if names is not None and info.name not in names:
            continue
        if not git_repo.is_repo(info.path):
            continue
        try:
            out[info.name] = "behind" if git_repo.has_update(info.path) else "latest"
        except GitError as exc:
            out[info.name] = f"unknown: {exc}"
    return out


def delete(paths, settings, flags, name: str) -> str:
    check_access(flags)
    info = find(paths, settings, flags, name)
    if info.builtin:
        raise ExtensionActionError(f"{name} is built in and cannot be deleted (disable it instead)")
    shutil.rmtree(info.path)
    return f"deleted {name}; restart the UI to unload it"


def set_disabled(settings, names: list[str]) -> None:
    """Persist the disabled set (takes effect on the next start, as A1111's Apply and restart)."""
    if DISABLED_SETTING not in {spec.key for spec in settings.specs()}:
        from modules.extensions.system import register_settings

        register_settings(settings)
    settings.update({DISABLED_SETTING: sorted(set(names))})


# -- the Available list --------------------------------------------------------------------------
def load_index(source: str | Path, *, timeout: float = INDEX_TIMEOUT_S) -> list[dict[str, Any]]:
    """Entries of an extension index (A1111's format: {"extensions": [{name, url, description, tags}]})
    from an http(s) URL or a file; raises ExtensionActionError with the reason."""
    text = str(source)
    try:
        if text.startswith(("http://", "https://")):
            with urllib.request.urlopen(text, timeout=timeout) as answer:  # noqa: S310 (user-chosen index)
                data = json.loads(answer.read(5_000_000).decode("utf-8"))
        else:
            data = json.loads(Path(text).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExtensionActionError(f"could not read the extension index {text}: {exc}") from None
    entries = data.get("extensions") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ExtensionActionError(f"{text}: not an extension index (no 'extensions' list)")
    out = []
    for entry in entries:
        if isinstance(entry, dict) and entry.get("url") and entry.get("name"):
            out.append({"name": str(entry["name"]), "url": str(entry["url"]),
                        "description": str(entry.get("description", "")),
                        "tags": [str(t) for t in entry.get("tags", []) if isinstance(t, str)]})
    return out


def filter_index(entries: list[dict[str, Any]], installed_urls: set[str], *, text: str = "",
                 hide_installed: bool = True) -> list[dict[str, Any]]:
    """Entries matching `text` (name, description or tag), installed ones flagged or hidden."""
    wanted = text.strip().lower()
    norm = {u.rstrip("/").removesuffix(".git").lower() for u in installed_urls}
    out = []
    for entry in entries:
        installed = entry["url"].rstrip("/").removesuffix(".git").lower() in norm
        if installed and hide_installed:
            continue
        haystack = " ".join([entry["name"], entry["description"], *entry["tags"]]).lower()
        if wanted and wanted not in haystack:
            continue
        out.append({**entry, "installed": installed})
    return out
