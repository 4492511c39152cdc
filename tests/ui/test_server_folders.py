"""Folders a page names (batch input, output, mask): relative ones are inside the data dir, and with --listen
(unless --enable-insecure-extension-access) a folder outside the data dir is refused with a clear message."""
from __future__ import annotations

import pytest

from modules.flags import parse_flags
from modules.types import UserInputError
from webui.ui.components.server_folders import confined, resolve_folder


@pytest.mark.parametrize("argv,expected", [
    ([], False),
    (["--listen"], True),
    (["--listen", "--enable-insecure-extension-access"], False),
    (["--enable-insecure-extension-access"], False),
])
def test_only_listen_without_the_insecure_flag_confines_folders(argv, expected):
    assert confined(parse_flags(argv, environ={})) is expected


def test_relative_folders_are_inside_the_data_dir(tmp_path):
    inside = resolve_folder("in/batch", tmp_path, confined=True, field="f")
    assert inside == tmp_path.resolve() / "in" / "batch"
    assert resolve_folder(str(tmp_path / "x"), tmp_path, confined=True, field="f") == tmp_path.resolve() / "x"


@pytest.mark.parametrize("named", ["/etc", "..", "in/../../elsewhere", "~"])
def test_outside_the_data_dir_is_refused_when_confined(tmp_path, named):
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(UserInputError, match="outside the data folder") as raised:
        resolve_folder(named, data, confined=True, field="batch_input_dir")
    assert raised.value.field == "batch_input_dir"
    assert "--enable-insecure-extension-access" in str(raised.value)
    assert resolve_folder(named, data, confined=False, field="f").is_absolute()


def test_a_link_out_of_the_data_dir_is_refused(tmp_path):
    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir()
    outside.mkdir()
    (data / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UserInputError, match="outside the data folder"):
        resolve_folder("link", data, confined=True, field="f")
