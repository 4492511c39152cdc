"""Scoped imports for A1111 extension code: A1111's module names resolve to adapter modules, for that
code only.

Our own package is also called `modules`, and A1111 names some modules like ours (`modules.paths`,
`modules.devices`, `modules.images`), so aliasing them in `sys.modules` would change what our core
imports. Instead every module of an A1111 extension is executed with a `__builtins__` whose
`__import__` knows the A1111 names: `from modules import shared` there gives the adapter, the same
statement in our code gives our package. Modules an extension imports from its own folder
(`from tagger.api import ...`) are loaded the same way by `ExtensionFinder`.
"""
from __future__ import annotations

import builtins
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path

# Top-level names that mean A1111 itself; `modules.*` is looked up in the adapter, the others are
# A1111's bundled repositories and cannot exist on diffusers.
A1111_PACKAGE = "modules"
UNAVAILABLE_TOP_LEVEL = {
    "ldm": "A1111's bundled latent-diffusion code (ldm)",
    "sgm": "A1111's bundled SDXL code (sgm)",
    "k_diffusion": "k-diffusion, A1111's sampler library",
    "repositories": "A1111's repositories folder",
    "modules_forge": "Forge's internals",
    "backend": "Forge's backend",
}


class UnsupportedA1111Import(ImportError):
    """An extension imported a part of A1111 this app does not provide; the message says which and why."""


ModuleFactory = Callable[[], types.ModuleType]


class A1111Imports:
    """Resolves A1111 module names to adapter modules, built lazily from registered factories."""

    def __init__(self, unsupported_reason: str = "it reaches into A1111's internals, which do not exist "
                                                 "in this diffusers-based app"):
        self._factories: dict[str, ModuleFactory] = {}
        self._modules: dict[str, types.ModuleType] = {}
        self._lock = threading.RLock()
        self._reason = unsupported_reason
        self.root = types.ModuleType(A1111_PACKAGE, "A1111's `modules` package, as an adapter")
        self.root.__path__ = []  # a package, so `import modules.x` is legal
        self.root.__getattr__ = self._root_attribute  # PEP 562: `modules.shared` on first use
        self._extra_top_level: dict[str, ModuleFactory] = {}
        self.builtins = dict(vars(builtins))
        self.builtins["__import__"] = self.import_

    # -- registering ----------------------------------------------------------------------------
    def provide(self, name: str, factory: ModuleFactory) -> None:
        """Make `name` (e.g. 'modules.shared', or a top-level name like 'launch') resolve to factory()."""
        with self._lock:
            if name.startswith(A1111_PACKAGE + "."):
                self._factories[name] = factory
            else:
                self._extra_top_level[name] = factory
            self._modules.pop(name, None)

    def provided(self) -> list[str]:
        with self._lock:
            return sorted([*self._factories, *self._extra_top_level])

    def module(self, name: str) -> types.ModuleType:
        """The adapter module for an A1111 name; UnsupportedA1111Import when there is none."""
        with self._lock:
            if name in self._modules:
                return self._modules[name]
            factory = self._factories.get(name) or self._extra_top_level.get(name)
            if factory is None:
                raise UnsupportedA1111Import(self.unsupported_message(name))
            module = factory()
            self._modules[name] = module
            return module

    def unsupported_message(self, name: str) -> str:
        top = name.split(".")[0]
        what = UNAVAILABLE_TOP_LEVEL.get(top, f"A1111's {name}")
        return f"this extension imports {name} ({what}), which this app does not provide: {self._reason}"

    def handles(self, name: str) -> bool:
        top = name.split(".")[0]
        return top == A1111_PACKAGE or top in UNAVAILABLE_TOP_LEVEL or name in self._extra_top_level

    # -- the import function extension code gets ------------------------------------------------
    def import_(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level != 0 or not self.handles(name):
            return builtins.__import__(name, globals, locals, fromlist, level)
        if name in self._extra_top_level:
            return self.module(name)
        if name.split(".")[0] in UNAVAILABLE_TOP_LEVEL:
            raise UnsupportedA1111Import(self.unsupported_message(name))
        if name == A1111_PACKAGE:
            return self.root
        target = self.module(name)
        # `from modules.shared import opts` wants the module itself; `import modules.shared` the package.
        return target if fromlist else self.root

    def _root_attribute(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return self.module(f"{A1111_PACKAGE}.{attribute}")

    # -- executing extension code ---------------------------------------------------------------
    def exec_file(self, path: Path, module_name: str) -> types.ModuleType:
        """Import one file (a scripts/*.py) as `module_name`, with the A1111 names in scope."""
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        module.__dict__["__builtins__"] = self.builtins
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        return module


class _ScopedLoader(importlib.abc.Loader):
    """Wraps a file loader so the module it executes sees the A1111 names."""

    def __init__(self, inner, imports: A1111Imports):
        self._inner = inner
        self._imports = imports

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        module.__dict__["__builtins__"] = self._imports.builtins
        self._inner.exec_module(module)

    def __getattr__(self, name):  # get_resource_reader, get_source, ... of the inner loader
        return getattr(self._inner, name)


class ExtensionFinder(importlib.abc.MetaPathFinder):
    """Finds modules inside A1111 extension folders and loads them with scoped imports.

    Only files under a registered folder are touched; everything else is found as usual. One finder
    serves every app in the process (tests build several), each folder mapped to its app's imports.
    """

    def __init__(self):
        self._roots: dict[Path, A1111Imports] = {}
        self._lock = threading.Lock()

    def register(self, root: Path, imports: A1111Imports) -> None:
        with self._lock:
            self._roots[Path(root).resolve()] = imports

    def unregister(self, imports: A1111Imports) -> None:
        with self._lock:
            self._roots = {r: i for r, i in self._roots.items() if i is not imports}

    def _owner(self, origin: str | None) -> A1111Imports | None:
        if not origin:
            return None
        path = Path(origin).resolve()
        with self._lock:
            for root, imports in self._roots.items():
                if path.is_relative_to(root):
                    return imports
        return None

    def find_spec(self, name, path=None, target=None):
        if "." not in name and name in sys.builtin_module_names:
            return None
        if path is not None and not any(self._owner(entry) for entry in path):
            return None  # a submodule of a package outside every extension: not ours to look at
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None and path is None:
            # A top-level package of an extension (A1111 put the extension's folder on sys.path).
            with self._lock:
                roots = [str(r) for r in self._roots]
            spec = importlib.machinery.PathFinder.find_spec(name, roots) if roots else None
        if spec is None or spec.loader is None:
            return None
        imports = self._owner(spec.origin)
        if imports is None:
            return None  # not extension code: let the normal finders handle it as if we were not here
        spec.loader = _ScopedLoader(spec.loader, imports)
        return spec


_FINDER = ExtensionFinder()


def extension_finder() -> ExtensionFinder:
    """The process's finder, installed at the front of sys.meta_path on first use."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    return _FINDER
