"""setup(api) runs in every app start and every test that builds an app: it registers the taggers, routes
and the Train tab without looking at model folders or importing onnxruntime or gradio."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_setup_registers_lazily(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys, types
        from pathlib import Path
        from modules.extensions.api import ExtensionApi
        from modules.extensions.loader import import_extension_package
        models = Path({str(tmp_path)!r}) / "models"
        looked = []
        real_scandir, real_listdir = os.scandir, os.listdir
        def watch(fn):
            def call(path=".", *a):
                if str(models) in str(path):
                    looked.append(str(path))
                return fn(path, *a)
            return call
        os.scandir, os.listdir = watch(real_scandir), watch(real_listdir)
        paths = types.SimpleNamespace(models_dir=models, data_dir=Path({str(tmp_path)!r}))
        api = ExtensionApi("dataset_tools", Path("extensions/dataset_tools"), settings=None, paths=paths,
                           flags=types.SimpleNamespace())
        import_extension_package("dataset_tools", Path("extensions/dataset_tools")).setup(api)
        c = api.contributions
        print(sorted(p.name for p in c.providers if p.kind == "tagger"))
        print(sorted((r.path, r.methods) for r in c.routes))
        print([(t.title, t.elem_id) for t in c.tabs])
        print("onnxruntime" in sys.modules, "gradio" in sys.modules, looked)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    taggers, routes, tabs, lazy = out.stdout.strip().splitlines()
    assert taggers == "['clip', 'deepdanbooru', 'wd14']"
    for path in ("/sdapi/v1/interrogate", "/tagger/v1/interrogate", "/tagger/v1/interrogators",
                 "/dataset/v1/caption", "/dataset/v1/tags"):
        assert f"'{path}'" in routes
    assert tabs == "[('Train', 'train')]"
    assert lazy == "False False []"
