"""Install from a git URL (the tab's code path) with the example extension, enable/disable, update,
delete, --listen refusal, the requirements guard on install, and the Available index."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from modules.extensions import manage
from modules.extensions.hooks import GenerationInfo
from modules.extensions.loader import ExtensionLoader
from modules.extensions.manage import ExtensionActionError
from modules.extensions.registry import ExtensionRegistry
from modules.paths import Paths
from modules.settings import Settings
from modules.types import GenerationRequest

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "hello-extension"
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def make_repo(folder: Path, source: Path) -> Path:
    shutil.copytree(source, folder)
    git(folder, "init", "-q", "-b", "main")
    git(folder, "add", ".")
    git(folder, "commit", "-q", "-m", "first")
    return folder


@pytest.fixture
def app(tmp_path):
    paths = Paths.from_dirs(tmp_path / "data")
    paths.ensure_writable()
    settings = Settings(paths.config_file)
    from modules.settings import SettingSpec

    settings.register(SettingSpec(manage.DISABLED_SETTING, [], "Disabled extensions", "extensions"))
    flags = SimpleNamespace(listen=False, enable_insecure_extension_access=False)
    return SimpleNamespace(paths=paths, settings=settings, flags=flags)


def load(app):
    registry = ExtensionRegistry(app.settings)
    loader = ExtensionLoader(registry, settings=app.settings, paths=app.paths, flags=app.flags, app_version="0.1.0")
    infos = [i for i in loader.load_all(manage.list_extensions(app.paths, app.settings, app.flags))
             if not i.builtin]
    return registry, {i.name: i for i in infos}


def hello_tabs(registry) -> list[str]:
    """The example's tab titles (built-ins such as dataset_tools add their own tabs too)."""
    return [t.title for t in registry.tabs() if t.extension == "hello-extension"]


def test_install_from_file_url_then_the_extension_loads_and_its_hook_writes_infotext(app, tmp_path):
    repo = make_repo(tmp_path / "src" / "hello-extension", EXAMPLE)
    result = manage.install_from_url(app.paths, app.flags, repo.as_uri())
    assert result.name == "hello-extension" and "restart" in result.message
    registry, infos = load(app)
    assert infos["hello-extension"].status == "loaded", infos["hello-extension"].error
    assert hello_tabs(registry) == ["Hello"]
    info = GenerationInfo(request=GenerationRequest(extensions={"hello-extension": {"args": [True, "Hi there"]}}))
    registry.hooks.run_filter("before_generation", info.request, info)
    assert info.params == {"Hello": "Hi there"}
    assert [p.name for p in registry.javascript()] == ["hello.js"]


def test_disable_removes_it_after_restart_and_enable_brings_it_back(app, tmp_path):
    repo = make_repo(tmp_path / "src" / "hello-extension", EXAMPLE)
    manage.install_from_url(app.paths, app.flags, repo.as_uri())
    manage.set_disabled(app.settings, ["hello-extension"])
    registry, infos = load(app)
    assert infos["hello-extension"].status == "disabled" and hello_tabs(registry) == []
    assert json.loads(app.paths.config_file.read_text())["disabled_extensions"] == ["hello-extension"]
    manage.set_disabled(app.settings, [])
    registry, infos = load(app)
    assert infos["hello-extension"].status == "loaded"


def test_update_pulls_a_new_commit_and_check_updates_sees_it(app, tmp_path):
    repo = make_repo(tmp_path / "src" / "hello-extension", EXAMPLE)
    manage.install_from_url(app.paths, app.flags, repo.as_uri())
    assert manage.check_updates(app.paths, app.settings, app.flags) == {"hello-extension": "latest"}
    init = repo / "__init__.py"
    init.write_text(init.read_text().replace('"Hello", build_tab', '"Hello v2", build_tab'))
    git(repo, "commit", "-qam", "v2")
    assert manage.check_updates(app.paths, app.settings, app.flags) == {"hello-extension": "behind"}
    assert "updated" in manage.update(app.paths, app.settings, app.flags, "hello-extension")
    registry, _ = load(app)
    assert hello_tabs(registry) == ["Hello v2"]


def test_listen_refuses_install_unless_insecure_access(app, tmp_path):
    repo = make_repo(tmp_path / "src" / "hello-extension", EXAMPLE)
    app.flags.listen = True
    with pytest.raises(ExtensionActionError, match="--enable-insecure-extension-access"):
        manage.install_from_url(app.paths, app.flags, repo.as_uri())
    assert not (app.paths.extensions_dir / "hello-extension").exists()
    app.flags.enable_insecure_extension_access = True
    assert manage.install_from_url(app.paths, app.flags, repo.as_uri()).name == "hello-extension"


def test_requirements_that_replace_torch_are_refused_and_the_clone_removed(app, tmp_path):
    repo = make_repo(tmp_path / "src" / "wants-old-torch", EXAMPLE)
    (repo / "requirements.txt").write_text("torch==1.13.1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "reqs")
    with pytest.raises(ExtensionActionError, match="would replace torch"):
        manage.install_from_url(app.paths, app.flags, repo.as_uri())
    assert not (app.paths.extensions_dir / "wants-old-torch").exists()


def test_bad_url_and_delete_rules(app, tmp_path):
    with pytest.raises(ExtensionActionError, match="not a git URL"):
        manage.install_from_url(app.paths, app.flags, "not a url")
    repo = make_repo(tmp_path / "src" / "hello-extension", EXAMPLE)
    manage.install_from_url(app.paths, app.flags, repo.as_uri())
    assert "deleted" in manage.delete(app.paths, app.settings, app.flags, "hello-extension")
    assert not (app.paths.extensions_dir / "hello-extension").exists()


def test_index_from_file_filters_and_flags_installed(tmp_path):
    index = tmp_path / "index.json"
    index.write_text(json.dumps({"extensions": [
        {"name": "Tagger", "url": "https://github.com/x/tagger.git", "description": "WD14 tags", "tags": ["tab"]},
        {"name": "Dynamic", "url": "https://github.com/y/dynamic", "description": "wildcards", "tags": ["script"]},
        {"bad": True}]}))
    entries = manage.load_index(index)
    assert [e["name"] for e in entries] == ["Tagger", "Dynamic"]
    assert [e["name"] for e in manage.filter_index(entries, {"https://github.com/x/tagger"})] == ["Dynamic"]
    shown = manage.filter_index(entries, {"https://github.com/x/tagger"}, text="tab", hide_installed=False)
    assert [(e["name"], e["installed"]) for e in shown] == [("Tagger", True)]
    with pytest.raises(ExtensionActionError, match="could not read"):
        manage.load_index(tmp_path / "missing.json")
