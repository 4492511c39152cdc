"""Import Gradio without its type-stub writer.

Gradio 6's component metaclass calls `create_or_modify_pyi` for every component class it creates: it reads
the class's source file, parses it with `ast`, renders a Jinja template and compares (or writes) a `.pyi`
file beside it. That is a developer tool for Gradio's own repository; here it cost ~3 of `import gradio`'s
~7 CPU seconds at every start, and for a component class an extension defines it writes a `.pyi` file into
that extension's folder. Nothing at run time reads those stubs.

`skip_stub_writer()` puts a finder at the front of `sys.meta_path` that, once `gradio.component_meta` has run,
replaces that function with a no-op, before any component class exists. It must run before the first
`import gradio`; after it, it does nothing (the classes are built already).
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

TARGET = "gradio.component_meta"


def _no_stub(*_args, **_kwargs) -> None:
    return None


class _StubSkipper(importlib.abc.MetaPathFinder):
    """Finds gradio.component_meta as the normal path finder would, and wraps its loader's exec_module."""

    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self]  # once is enough
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module) -> None:
            run(module)
            # Only if Gradio still has it: another version may have dropped or renamed it.
            if hasattr(module, "create_or_modify_pyi"):
                module.create_or_modify_pyi = _no_stub

        spec.loader.exec_module = exec_module
        return spec


def skip_stub_writer() -> bool:
    """Install the finder unless Gradio is imported already; True when it will take effect."""
    if TARGET in sys.modules:
        return False
    if not any(isinstance(f, _StubSkipper) for f in sys.meta_path):
        sys.meta_path.insert(0, _StubSkipper())
    return True
