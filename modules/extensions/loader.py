"""Find extensions, decide which are enabled, import them and run their setup, each failure contained.

Folders: the project's `extensions/` (built-ins ship there, marked `builtin = true` in their manifest)
and the data dir's `extensions/` when it is another folder. Each sub-folder is one extension:
- native: has `extension.toml` and a `setup(api)` entry point;
- a1111: has `scripts/` (or `install.py`/`preload.py`/`javascript/`), loaded by the A1111 adapter;
- anything else is listed with a note and not loaded.
Order: built-ins first, then by folder name (as A1111 sorts), so load order never depends on the disk.
Disabled: names in the `disabled_extensions` setting; `--disable-all-extensions` turns off all of them,
`--disable-extra-extensions` all but the built-ins (A1111's flags).
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from modules.extensions.api import API_VERSION, ExtensionApi
from modules.extensions.hooks import describe_exception
from modules.extensions.manifest import Manifest, ManifestError, read_manifest, version_tuple
from modules.extensions.registry import Contributions, ExtensionRegistry

log = logging.getLogger("webui.extensions")

ExtensionKind = Literal["native", "a1111", "unknown"]
ExtensionStatus = Literal["loaded", "disabled", "failed", "not loaded"]
A1111_MARKERS = ("scripts", "install.py", "preload.py", "javascript")
MODULE_PREFIX = "webui_extensions"  # native extensions import as webui_extensions.<safe name>


@dataclass(frozen=True)
class ExtensionRoot:
    """A folder holding extensions; `builtin` for the project's own (cannot be deleted from the UI)."""

    path: Path
    builtin: bool = False


@dataclass
class ExtensionInfo:
    """One extension folder, as found on disk and as it went when loading."""

    name: str
    path: Path
    kind: ExtensionKind
    builtin: bool = False
    manifest: Manifest | None = None
    enabled: bool = True
    status: ExtensionStatus = "not loaded"
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def version(self) -> str:
        return self.manifest.version if self.manifest else ""

    @property
    def description(self) -> str:
        return self.manifest.description if self.manifest else ""


def classify(folder: Path) -> ExtensionKind:
    """'native' with a manifest, 'a1111' with scripts/ (or another A1111 marker), else 'unknown'."""
    if (folder / "extension.toml").is_file():
        return "native"
    if any((folder / marker).exists() for marker in A1111_MARKERS):
        return "a1111"
    return "unknown"


def discover(roots: Iterable[ExtensionRoot], *, disabled: Iterable[str] = (), disable_all: bool = False,
             disable_extra: bool = False) -> list[ExtensionInfo]:
    """Every extension folder under `roots`, ordered (built-ins first, then by name), with enabled set."""
    disabled = set(disabled)
    found: dict[str, ExtensionInfo] = {}
    for root in roots:
        if not root.path.is_dir():
            continue
        for folder in sorted(p for p in root.path.iterdir() if p.is_dir()):
            if folder.name.startswith((".", "_")):
                continue  # .git, __pycache__, half-finished clones (.tmp-...)
            info = _describe(folder, root.builtin)
            if info.name in found:
                found[info.name].notes.append(f"another folder with this name is ignored: {folder}")
                continue
            found[info.name] = info
    infos = sorted(found.values(), key=lambda i: (not i.builtin, i.name.lower()))
    for info in infos:
        off = (info.name in disabled or disable_all or (disable_extra and not info.builtin))
        if off:
            info.enabled, info.status = False, "disabled"
    return infos


def _describe(folder: Path, builtin_root: bool) -> ExtensionInfo:
    kind = classify(folder)
    # Built in: shipped in the project's folder *and* saying so in its manifest (a user's clone in the
    # same folder is not built in, so it can be deleted).
    info = ExtensionInfo(name=folder.name, path=folder, kind=kind, builtin=False)
    if kind == "native":
        try:
            info.manifest = read_manifest(folder)
        except ManifestError as exc:
            info.status, info.error = "failed", str(exc)
            return info
        info.builtin = builtin_root and info.manifest.builtin
        if info.manifest.style == "a1111":
            info.kind = "a1111"
    elif kind == "unknown":
        info.notes.append("no extension.toml and no scripts/ folder: not an extension")
    return info


class ExtensionLoader:
    """Loads the enabled extensions into an ExtensionRegistry; `a1111_loader` handles A1111-style ones."""

    def __init__(self, registry: ExtensionRegistry, *, settings, paths, flags, app_version: str,
                 a1111_loader: Callable[[ExtensionInfo, ExtensionRegistry], None] | None = None, jobs=None,
                 pipelines=None):
        self.registry = registry
        self._jobs = jobs  # the app's JobQueue, for api.submit_job
        self._pipelines = pipelines  # the app's PipelineManager, for api.loaded_model
        self._settings = settings
        self._paths = paths
        self._flags = flags
        self._app_version = app_version
        self._a1111_loader = a1111_loader

    def load_all(self, infos: list[ExtensionInfo]) -> list[ExtensionInfo]:
        """Load every enabled extension in order; each failure is recorded on its info and in the log."""
        for info in infos:
            if not info.enabled or info.status == "failed":
                if info.error:
                    self.registry.errors.add(info.name, info.error)
                    log.error("Extension %s: %s", info.name, info.error)
                continue
            if info.kind == "native":
                self.load_native(info)
            elif info.kind == "a1111":
                self._load_a1111(info)
        return infos

    def load_native(self, info: ExtensionInfo) -> None:
        manifest = info.manifest
        assert manifest is not None
        problem = self._incompatibility(manifest)
        if problem:
            self._fail(info, problem)
            return
        contributions = Contributions()
        api = ExtensionApi(info.name, info.path, settings=self._settings, paths=self._paths, flags=self._flags,
                           contributions=contributions, jobs=self._jobs, pipelines=self._pipelines)
        try:
            setup = self._entry_point(info, manifest)
            setup(api)
        except Exception as exc:
            self._fail(info, f"setup failed: {describe_exception(exc)}")
            return
        # javascript/*.js and style.css are picked up by convention, as A1111 does.
        contributions.javascript += sorted((info.path / "javascript").glob("*.js"))
        if (info.path / "style.css").is_file():
            contributions.css.append(info.path / "style.css")
        self.registry.commit(info.name, contributions)
        info.status, info.error = "loaded", None
        log.info("Loaded extension %s %s", info.name, manifest.version)

    def _load_a1111(self, info: ExtensionInfo) -> None:
        if self._a1111_loader is None:
            self._fail(info, "A1111-style extensions are not supported in this build")
            return
        try:
            self._a1111_loader(info, self.registry)
        except Exception as exc:
            self._fail(info, describe_exception(exc))
            return
        if info.status != "failed":
            info.status = "loaded"

    def _incompatibility(self, manifest: Manifest) -> str | None:
        if manifest.api_version != API_VERSION[0]:
            return (f"written for extension API {manifest.api_version}, this app provides "
                    f"{API_VERSION[0]}.{API_VERSION[1]}")
        if manifest.min_app_version and version_tuple(manifest.min_app_version) > version_tuple(self._app_version):
            return f"needs app version {manifest.min_app_version} or newer (this is {self._app_version})"
        return None

    def _entry_point(self, info: ExtensionInfo, manifest: Manifest):
        package = import_extension_package(info.name, info.path)
        module = package
        if manifest.entry_module not in ("", "__init__"):
            module = importlib.import_module(f"{package.__name__}.{manifest.entry_module}")
        setup = getattr(module, manifest.entry_function, None)
        if not callable(setup):
            raise AttributeError(f"entry point {manifest.entry!r} is not a function in {info.path}")
        return setup

    def _fail(self, info: ExtensionInfo, message: str) -> None:
        info.status, info.error = "failed", message
        self.registry.errors.add(info.name, message)
        self.registry.hooks.remove_extension(info.name)
        log.error("Extension %s failed to load: %s", info.name, message)


def package_name(extension: str) -> str:
    safe = "".join(c if c.isalnum() or c == "_" else "_" for c in extension)
    return f"{MODULE_PREFIX}.{safe}"


def import_extension_package(extension: str, folder: Path):
    """Import `folder` as the package webui_extensions.<name>, so its relative imports work and two
    extensions with same-named modules (utils.py) never collide in sys.modules."""
    if MODULE_PREFIX not in sys.modules:
        namespace = importlib.util.module_from_spec(importlib.machinery.ModuleSpec(MODULE_PREFIX, None,
                                                                                 is_package=True))
        namespace.__path__ = []
        sys.modules[MODULE_PREFIX] = namespace
    name = package_name(extension)
    init = folder / "__init__.py"
    if not init.is_file():  # a folder of modules: a bare package whose path is the folder
        module = importlib.util.module_from_spec(importlib.machinery.ModuleSpec(name, None, is_package=True))
        module.__path__ = [str(folder)]
        sys.modules[name] = module
        return module
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder)])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import extension folder {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
