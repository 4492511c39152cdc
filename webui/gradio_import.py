"""Import Gradio without its type-stub writer, and with the signatures it asks for remembered.

Gradio 6's component metaclass calls `create_or_modify_pyi` for every component class it creates: it reads
the class's source file, parses it with `ast`, renders a Jinja template and compares (or writes) a `.pyi`
file beside it. That is a developer tool for Gradio's own repository; here it cost ~3 of `import gradio`'s
~7 CPU seconds at every start, and for a component class an extension defines it writes a `.pyi` file into
that extension's folder. Nothing at run time reads those stubs.

Gradio also asks `inspect` for the same signatures over and over: every component's construction calls
`inspect.getfullargspec` on its `__init__`, and the page config calls `inspect.signature(cls.__init__)` once per
block (~1000 here, ~4000 calls per config). A signature does not change, so both modules get an `inspect`
whose `signature(fn)` and `getfullargspec(fn)` remember their answer per function.

`lighten_gradio_import()` puts a finder at the front of `sys.meta_path` that, once `gradio.component_meta` (and
`gradio.blocks`) has run, replaces the stub writer with a no-op and `inspect` with the remembering one, before
any component class exists. It must run before the first `import gradio`; after it, it does nothing.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import inspect
import sys
import types
import weakref

TARGET = "gradio.component_meta"
REMEMBERING = (TARGET, "gradio.blocks")  # the modules whose `inspect` remembers signatures


def _no_stub(*_args, **_kwargs) -> None:
    return None


def _remembered(lookup):
    """`lookup(fn)` remembered per function (weakly: classes made at run time can still go away); any other
    call form, and objects that cannot be weakly referenced, go straight to `lookup`."""
    seen: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def remembered(fn, *args, **kwargs):
        if args or kwargs:
            return lookup(fn, *args, **kwargs)
        try:
            return seen[fn]
        except KeyError:
            answer = seen[fn] = lookup(fn)
            return answer
        except TypeError:
            return lookup(fn)

    return remembered


def remembering_inspect() -> types.ModuleType:
    """A stand-in for the `inspect` module: all of it, with signature/getfullargspec remembered."""
    module = types.ModuleType("inspect")
    module.__dict__.update(inspect.__dict__)
    module.signature = _remembered(inspect.signature)
    module.getfullargspec = _remembered(inspect.getfullargspec)
    return module


class _GradioImportFinder(importlib.abc.MetaPathFinder):
    """Finds the REMEMBERING modules as the normal path finder would, and wraps their loaders' exec_module."""

    def __init__(self) -> None:
        self.pending = set(REMEMBERING)

    def find_spec(self, name, path, target=None):
        if name not in self.pending:
            return None
        self.pending.discard(name)
        if not self.pending:
            sys.meta_path[:] = [f for f in sys.meta_path if f is not self]  # once is enough
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module) -> None:
            run(module)
            # Only what Gradio still has: another version may have dropped or renamed it.
            if name == TARGET and hasattr(module, "create_or_modify_pyi"):
                module.create_or_modify_pyi = _no_stub
            if getattr(module, "inspect", None) is inspect:
                module.inspect = remembering_inspect()

        spec.loader.exec_module = exec_module
        return spec


def lighten_gradio_import() -> bool:
    """Install the finder unless Gradio is imported already; True when it will take effect."""
    if TARGET in sys.modules:
        return False
    if not any(isinstance(f, _GradioImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _GradioImportFinder())
    return True
