"""preload.py of extensions add command-line flags (A1111's preload), so launch.py accepts them."""
from __future__ import annotations

import json

import pytest

from modules.flags import parse_flags


def write_preload(root, name, text):
    folder = root / "extensions" / name
    folder.mkdir(parents=True)
    (folder / "preload.py").write_text(text)


def test_extension_flags_are_accepted_and_reach_flags_and_cmd_opts(tmp_path, capsys):
    write_preload(tmp_path, "cn", "from modules import paths\n"
                                  "def preload(parser):\n"
                                  "    parser.add_argument('--cn-dir', default=paths.models_path + '/ControlNet')\n")
    write_preload(tmp_path, "broken", "raise ValueError('oops')\n")
    flags = parse_flags(["--cn-dir", "/x"], environ={}, project_root=tmp_path)
    assert flags.extension_flag("cn_dir") == "/x"
    assert "broken/preload.py failed: ValueError: oops" in capsys.readouterr().err
    default = parse_flags([], environ={}, project_root=tmp_path)
    assert default.extension_flag("cn_dir") == str(tmp_path / "models") + "/ControlNet"

    from modules.a1111.app import build_cmd_opts

    assert build_cmd_opts(flags).cn_dir == "/x" and build_cmd_opts(flags).listen is False


def test_disabled_extensions_add_no_flags(tmp_path):
    write_preload(tmp_path, "cn", "def preload(parser):\n    parser.add_argument('--cn-dir')\n")
    (tmp_path / "config.json").write_text(json.dumps({"disabled_extensions": ["cn"]}))
    with pytest.raises(SystemExit):
        parse_flags(["--cn-dir", "/x"], environ={}, project_root=tmp_path)
    with pytest.raises(SystemExit):
        parse_flags(["--cn-dir", "/x", "--disable-all-extensions"], environ={},
                    project_root=tmp_path / "nothing-here")
    assert parse_flags(["--disable-extra-extensions"], environ={}).disable_extra_extensions
