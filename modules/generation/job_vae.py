"""The VAE a job's settings ask for (override_settings' `sd_vae`), swapped in for that job only.

The loaded model got its VAE from the stored "SD VAE" choice. A job whose choice differs gets the other
VAE's weights copied into the same module (so the txt2img, img2img and inpaint pipelines, which share it,
all see it) and the previous weights back afterwards, unless `keep` is set (A1111's
override_settings_restore_afterwards=false).
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def vae_path_for(choice: str, checkpoint_path: Path | str, vae_dir: Path | str,
                 ckpt_dirs=()) -> Path | None:
    """The VAE file for an "SD VAE" choice (as the loader picks it): None = the checkpoint's own VAE."""
    from modules.pipelines.loading import find_auto_vae
    from modules.pipelines.registry import find_vae, list_vae_files

    if choice == "None":
        return None
    if choice != "Automatic":
        found = find_vae(list_vae_files(vae_dir, ckpt_dirs), choice)
        if found is not None:
            return found.path
        log.warning("SD VAE %r not found in %s; using Automatic", choice, vae_dir)
    return find_auto_vae(checkpoint_path, vae_dir)


@contextlib.contextmanager
def job_vae(pipe, loaded: Path | None, wanted: Path | None, *, keep: bool = False,
            warnings: list[str] | None = None) -> Iterator[bool]:
    """Run the body with the VAE file `wanted` in `pipe.vae` when it is not the `loaded` one; the previous
    weights come back on exit unless `keep`. A file that does not fit is a warning; the loaded VAE stays.
    Yields whether `wanted` is the VAE the body runs with (False: the loaded one, so infotext names that)."""
    import torch

    if wanted == loaded or pipe is None or getattr(pipe, "vae", None) is None:
        yield True
        return
    if wanted is None:
        # The baked-in weights were replaced when the model loaded; only a reload brings them back.
        _warn(warnings, "override_settings: sd_vae asks for the checkpoint's own VAE, which is not loaded; "
                        "the loaded VAE was used (change SD VAE in Settings to reload the model)")
        yield False
        return
    from modules.pipelines.loading import CheckpointError, load_vae

    try:
        other = load_vae(wanted, like=pipe)
    except CheckpointError as exc:
        _warn(warnings, f"override_settings: sd_vae {exc}; the loaded VAE was used")
        yield False
        return
    vae = pipe.vae
    # Kept on the CPU: the swap must not double the VAE's share of VRAM.
    saved = {k: v.detach().to("cpu", copy=True) for k, v in vae.state_dict().items()}
    with torch.no_grad():
        vae.load_state_dict(other.state_dict())
    del other
    log.info("Using VAE %s for one job", Path(wanted).name)
    try:
        yield True
    finally:
        if not keep:
            with torch.no_grad():
                vae.load_state_dict(saved)


def _warn(warnings: list[str] | None, text: str) -> None:
    log.warning(text)
    if warnings is not None:
        warnings.append(text)
