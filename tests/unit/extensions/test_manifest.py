"""extension.toml parsing: fields, defaults, and a message naming the file and field for each mistake."""
from __future__ import annotations

import pytest

from modules.extensions.manifest import ManifestError, parse_manifest, read_manifest, version_tuple


def test_full_manifest_is_read(tmp_path):
    (tmp_path / "extension.toml").write_text(
        'name = "cats"\nversion = "1.2.0"\ndescription = "Adds cats"\nentry = "cats_ext.main:install"\n'
        'requirements = ["tqdm>=4", " "]\nmin_app_version = "0.1.0"\napi_version = 1\nbuiltin = true\n')
    m = read_manifest(tmp_path)
    assert (m.name, m.version, m.description, m.requirements, m.builtin) == (
        "cats", "1.2.0", "Adds cats", ("tqdm>=4",), True)
    assert (m.entry_module, m.entry_function) == ("cats_ext.main", "install")


def test_defaults_take_the_folder_name(tmp_path):
    folder = tmp_path / "my-ext"
    folder.mkdir()
    (folder / "extension.toml").write_text("")
    m = read_manifest(folder)
    assert (m.name, m.entry_module, m.entry_function, m.api_version, m.builtin) == (
        "my-ext", "__init__", "setup", 1, False)


def test_no_manifest_is_none(tmp_path):
    assert read_manifest(tmp_path) is None


@pytest.mark.parametrize("text, words", [
    ("name = [", "not valid TOML"),
    ('name = "has space"', "'name'"),
    ("version = 3", "'version' must be a str"),
    ('entry = "a b"', "'entry'"),
    ("requirements = [1]", "'requirements'"),
    ("api_version = true", "'api_version' must be a int"),
])
def test_mistakes_name_file_and_field(text, words):
    with pytest.raises(ManifestError) as err:
        parse_manifest(text, source="ext/extension.toml", default_name="ext")
    assert words in str(err.value) and "ext/extension.toml" in str(err.value)


def test_version_tuple_orders_numerically():
    assert version_tuple("0.10.0") > version_tuple("0.9.9")
    assert version_tuple("1.2.0rc1") == (1, 2, 0)
