"""`extension.toml`: what a native extension says about itself (name, version, entry point, needs).

A native extension is a folder with this file and a `setup(api)` function. A folder without it is an
A1111-style extension (it has `scripts/`) or not an extension at all. The manifest is pure data, read
with the standard library, so listing extensions never imports their code.

    name = "example"
    version = "1.2.0"
    description = "What it does, in one line"
    entry = "example_ext:setup"        # module (relative to the folder) : function; default "__init__:setup"
    requirements = ["some-package>=1.0"]
    min_app_version = "0.1.0"
    api_version = 1                    # the ExtensionApi major version it was written for
    builtin = true                     # only for the folders this project ships
    style = "native"                   # or "a1111": scripts/ loaded by the A1111 adapter, metadata from here
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - 3.10
    tomllib = None  # type: ignore[assignment]

MANIFEST_NAME = "extension.toml"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENTRY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*(:[A-Za-z_][A-Za-z0-9_]*)?$")


class ManifestError(ValueError):
    """extension.toml is unreadable or has a bad field; the message names the file and the field."""


@dataclass(frozen=True)
class Manifest:
    """A native extension's declared identity and needs."""

    name: str
    version: str = "0.0.0"
    description: str = ""
    entry: str = "__init__:setup"
    requirements: tuple[str, ...] = ()
    min_app_version: str = ""
    api_version: int = 1
    builtin: bool = False
    style: str = "native"

    @property
    def entry_module(self) -> str:
        return self.entry.partition(":")[0]

    @property
    def entry_function(self) -> str:
        return self.entry.partition(":")[2] or "setup"


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest, None when it has none; raises ManifestError when it is broken."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read: {exc}") from None
    return parse_manifest(text, source=str(path), default_name=Path(folder).name)


def parse_manifest(text: str, *, source: str = MANIFEST_NAME, default_name: str = "") -> Manifest:
    """Parse extension.toml text; every problem raises ManifestError naming `source` and the field."""
    if tomllib is None:  # pragma: no cover
        raise ManifestError(f"{source}: reading extension.toml needs Python 3.11 or newer")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{source}: not valid TOML: {exc}") from None

    def field(key: str, kind: type, default):
        value = data.get(key, default)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ManifestError(f"{source}: '{key}' must be a {kind.__name__}, not {type(value).__name__}")
        return value

    name = field("name", str, default_name).strip()
    if not _NAME_RE.match(name):
        raise ManifestError(f"{source}: 'name' {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    entry = field("entry", str, "__init__:setup").strip()
    if not _ENTRY_RE.match(entry):
        raise ManifestError(f"{source}: 'entry' {entry!r} must look like 'module:function'")
    requirements = field("requirements", list, [])
    if not all(isinstance(r, str) for r in requirements):
        raise ManifestError(f"{source}: 'requirements' must be a list of strings")
    return Manifest(
        name=name,
        version=str(field("version", str, "0.0.0")),
        description=field("description", str, ""),
        entry=entry,
        requirements=tuple(r.strip() for r in requirements if r.strip()),
        min_app_version=field("min_app_version", str, ""),
        api_version=field("api_version", int, 1),
        builtin=field("builtin", bool, False),
        style=_style(field("style", str, "native"), source),
    )


def _style(value: str, source: str) -> str:
    if value not in ("native", "a1111"):
        raise ManifestError(f"{source}: 'style' must be \"native\" or \"a1111\", not {value!r}")
    return value


def version_tuple(version: str) -> tuple[int, ...]:
    """'1.10.2' -> (1, 10, 2); non-numeric tails are ignored ('0.2.0rc1' -> (0, 2, 0))."""
    parts = []
    for piece in version.strip().split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
    return tuple(parts)
