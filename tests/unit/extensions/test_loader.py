"""Discovery (order, kinds, disabled), native loading through setup(api), and failures that leave nothing."""
from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

from modules.extensions.loader import ExtensionLoader, ExtensionRoot, discover
from modules.extensions.registry import ExtensionRegistry
from modules.settings import Settings


def write_ext(root: Path, name: str, setup_body: str = "pass", manifest: str = "", files: dict | None = None):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "extension.toml").write_text(manifest or f'name = "{name}"\nversion = "1.0"\n')
    body = textwrap.indent(textwrap.dedent(setup_body).strip() or "pass", "    ")
    (folder / "__init__.py").write_text(f"def setup(api):\n{body}\n")
    for rel, text in (files or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(textwrap.dedent(text))
    return folder


def make_loader(tmp_path):
    settings = Settings(tmp_path / "config.json")
    registry = ExtensionRegistry(settings)
    paths = SimpleNamespace(models_dir=tmp_path / "models", data_dir=tmp_path)
    loader = ExtensionLoader(registry, settings=settings, paths=paths, flags=SimpleNamespace(),
                             app_version="0.1.0")
    return loader, registry, settings


def test_discovery_orders_builtins_first_then_by_name_and_classifies(tmp_path):
    builtin, user = tmp_path / "builtin", tmp_path / "user"
    write_ext(builtin, "zeta", manifest='name = "zeta"\nbuiltin = true\n')
    write_ext(user, "Alpha")
    (user / "a1111-style" / "scripts").mkdir(parents=True)
    (user / "just-a-folder").mkdir()
    (user / ".tmp-half-clone").mkdir()
    infos = discover([ExtensionRoot(builtin, builtin=True), ExtensionRoot(user)])
    assert [(i.name, i.kind, i.builtin) for i in infos] == [
        ("zeta", "native", True), ("a1111-style", "a1111", False), ("Alpha", "native", False),
        ("just-a-folder", "unknown", False)]


def test_a_user_folder_cannot_claim_builtin(tmp_path):
    write_ext(tmp_path / "user", "sneaky", manifest='name = "sneaky"\nbuiltin = true\n')
    (info,) = discover([ExtensionRoot(tmp_path / "user")])
    assert info.builtin is False


def test_disabled_setting_and_flags(tmp_path):
    builtin, user = tmp_path / "builtin", tmp_path / "user"
    write_ext(builtin, "core-ext", manifest='name = "core-ext"\nbuiltin = true\n')
    write_ext(user, "one")
    write_ext(user, "two")
    roots = [ExtensionRoot(builtin, True), ExtensionRoot(user)]
    assert [i.enabled for i in discover(roots, disabled=["two"])] == [True, True, False]
    assert [i.enabled for i in discover(roots, disable_extra=True)] == [True, False, False]
    assert [i.enabled for i in discover(roots, disable_all=True)] == [False, False, False]


def test_setup_registers_tab_section_setting_hook_route_and_provider(tmp_path):
    write_ext(tmp_path, "demo", """
        api.add_tab("Demo Tab", lambda: None)
        api.add_section("Demo", lambda is_img2img: [])
        api.add_setting("demo_strength", 0.5, "Demo strength")
        api.on("after_image", lambda image, info: None)
        api.add_route("/demo/ping", lambda: {"ok": True})
        api.register_extra_network("demo", object(), aliases=("dm",))
        api.add_javascript("javascript/demo.js")
    """, files={"javascript/demo.js": "console.log('demo');\n", "style.css": "#x{}\n"})
    loader, registry, settings = make_loader(tmp_path)
    (info,) = loader.load_all(discover([ExtensionRoot(tmp_path)]))
    assert info.status == "loaded", info.error
    assert [t.elem_id for t in registry.tabs()] == ["demo_tab"]
    assert [s.title for s in registry.sections("img2img")] == ["Demo"]
    assert settings.get("demo_strength") == 0.5 and "demo_strength" in {s.key for s in settings.specs()}
    assert registry.hooks.has("after_image")
    assert [r.path for r in registry.routes()] == ["/demo/ping"]
    assert registry.provider("extra_network", "DM").name == "demo"
    # javascript/*.js and style.css are picked up; the explicitly added file is not listed twice as a risk
    assert {p.name for p in registry.javascript()} == {"demo.js"} and registry.css()[0].name == "style.css"


def test_setup_that_raises_half_way_leaves_nothing_behind(tmp_path):
    write_ext(tmp_path, "halfway", """
        api.add_tab("Half", lambda: None)
        api.on("on_step", print)
        raise RuntimeError("missing weights file")
    """)
    write_ext(tmp_path, "fine", 'api.add_tab("Fine", lambda: None)')
    loader, registry, _ = make_loader(tmp_path)
    fine, half = loader.load_all(discover([ExtensionRoot(tmp_path)]))  # sorted by name
    assert half.status == "failed" and "RuntimeError: missing weights file" in half.error
    assert fine.status == "loaded"
    assert [t.title for t in registry.tabs()] == ["Fine"] and not registry.hooks.has("on_step")
    assert "missing weights file" in registry.errors.of("halfway")[0]


def test_syntax_error_and_wrong_api_version_are_reported(tmp_path):
    folder = write_ext(tmp_path, "syntax")
    (folder / "__init__.py").write_text("def setup(api)\n    pass\n")
    write_ext(tmp_path, "future", manifest='name = "future"\napi_version = 2\n')
    write_ext(tmp_path, "newer", manifest='name = "newer"\nmin_app_version = "9.0"\n')
    loader, registry, _ = make_loader(tmp_path)
    infos = {i.name: i for i in loader.load_all(discover([ExtensionRoot(tmp_path)]))}
    assert infos["syntax"].status == "failed" and "SyntaxError" in infos["syntax"].error
    assert "extension API 2" in infos["future"].error
    assert "needs app version 9.0" in infos["newer"].error


def test_extensions_import_their_own_modules_without_colliding(tmp_path):
    for name, word in (("first", "one"), ("second", "two")):
        write_ext(tmp_path, name, "from . import utils\napi.add_tab(utils.WORD, lambda: None)",
                  files={"utils.py": f"WORD = '{word}'\n"})
    loader, registry, _ = make_loader(tmp_path)
    loader.load_all(discover([ExtensionRoot(tmp_path)]))
    assert [t.title for t in registry.tabs()] == ["one", "two"]


def test_entry_point_in_a_submodule(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "extension.toml").write_text('name = "sub"\nentry = "pkg.main:start"\n')
    (folder / "pkg").mkdir()
    (folder / "pkg" / "__init__.py").write_text("")
    (folder / "pkg" / "main.py").write_text("def start(api):\n    api.add_tab('Sub', lambda: None)\n")
    loader, registry, _ = make_loader(tmp_path)
    (info,) = loader.load_all(discover([ExtensionRoot(tmp_path)]))
    assert info.status == "loaded", info.error
    assert registry.tabs()[0].title == "Sub"
