"""Where each kind of image goes: A1111's `outdir_*` settings resolved to folders.

A1111's rules: `outdir_samples`, when set, takes every generated image (txt2img, img2img and extras) and
`outdir_grids` every grid; when empty, each mode has its own folder (`outdir_txt2img_samples`, ...). The Save
button writes to `outdir_save` (`log/images`). A relative path is relative to the data dir, as A1111's are
to its install folder, so the defaults give `<data>/outputs/txt2img-images` and so on.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Kind -> (setting that overrides all of its group, its own setting, A1111's default for it).
_RULES: dict[str, tuple[str, str, str]] = {
    "txt2img": ("outdir_samples", "outdir_txt2img_samples", "outputs/txt2img-images"),
    "img2img": ("outdir_samples", "outdir_img2img_samples", "outputs/img2img-images"),
    "extras": ("outdir_samples", "outdir_extras_samples", "outputs/extras-images"),
    "txt2img-grids": ("outdir_grids", "outdir_txt2img_grids", "outputs/txt2img-grids"),
    "img2img-grids": ("outdir_grids", "outdir_img2img_grids", "outputs/img2img-grids"),
    "save": ("", "outdir_save", "log/images"),
    "init-images": ("", "outdir_init_images", "outputs/init-images"),
}
OUTPUT_KINDS = tuple(_RULES)


@dataclass(frozen=True)
class OutputDirs:
    """Absolute folders per kind of image (txt2img, img2img, extras, txt2img-grids, img2img-grids, save)."""

    folders: tuple[tuple[str, Path], ...]

    @classmethod
    def from_settings(cls, values: Mapping[str, Any], data_dir: Path | str) -> OutputDirs:
        """From A1111's outdir_* settings; empty or missing ones take A1111's defaults under `data_dir`."""
        base = Path(data_dir)
        folders = []
        for kind, (group_key, own_key, default) in _RULES.items():
            chosen = str(values.get(group_key) or "").strip() if group_key else ""
            chosen = chosen or str(values.get(own_key) or "").strip() or default
            path = Path(chosen).expanduser()
            folders.append((kind, path if path.is_absolute() else base / path))
        return cls(tuple(folders))

    @classmethod
    def under(cls, data_dir: Path | str) -> OutputDirs:
        """A1111's default folders under `data_dir`."""
        return cls.from_settings({}, data_dir)

    def folder(self, kind: str) -> Path:
        """The folder for `kind`; raises ValueError naming the kinds for an unknown one."""
        for name, path in self.folders:
            if name == kind:
                return path
        raise ValueError(f"unknown output kind {kind!r}; choose one of: {', '.join(OUTPUT_KINDS)}")
