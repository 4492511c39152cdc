"""Where user data lives: one frozen `Paths` built from the command-line flags.

Folder names inside `models/` follow A1111 so that users can point us at an existing install.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIGS_DIR = PROJECT_ROOT / "configs"
BUILTIN_EXTENSIONS_DIR = PROJECT_ROOT / "extensions"

# A1111's folder names inside models/.
MODEL_SUBDIRS = {
    "checkpoints": "Stable-diffusion",
    "vae": "VAE",
    "lora": "Lora",
    "controlnet": "ControlNet",
    "esrgan": "ESRGAN",
    "realesrgan": "RealESRGAN",
    "hypernetworks": "hypernetworks",
    "tagger": "Tagger",
}


@dataclass(frozen=True)
class Paths:
    """Every folder the app reads or writes. Build with `Paths.from_dirs(...)`."""

    data_dir: Path
    models_dir: Path
    ckpt_dirs: tuple[Path, ...]
    ckpt_files: tuple[Path, ...]
    vae_dir: Path
    lora_dir: Path
    controlnet_dir: Path
    esrgan_dir: Path
    embeddings_dir: Path
    outputs_dir: Path
    extensions_dir: Path
    config_file: Path
    ui_config_file: Path
    styles_file: Path
    hash_cache_file: Path
    user_css_file: Path
    configs_dir: Path = CONFIGS_DIR
    builtin_extensions_dir: Path = BUILTIN_EXTENSIONS_DIR
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_dirs(
        cls,
        data_dir: Path | str,
        models_dir: Path | str | None = None,
        ckpt_dir: Path | str | None = None,
        ckpt: Path | str | None = None,
        vae_dir: Path | str | None = None,
        lora_dir: Path | str | None = None,
        controlnet_dir: Path | str | None = None,
        embeddings_dir: Path | str | None = None,
    ) -> "Paths":
        """Resolve defaults the way A1111 does: everything under data_dir unless a flag says otherwise."""
        data = Path(data_dir).expanduser().resolve()
        models = Path(models_dir).expanduser().resolve() if models_dir else data / "models"
        main_ckpt_dir = models / MODEL_SUBDIRS["checkpoints"]
        ckpt_dirs = (main_ckpt_dir,) + ((Path(ckpt_dir).expanduser().resolve(),) if ckpt_dir else ())
        return cls(
            data_dir=data,
            models_dir=models,
            ckpt_dirs=ckpt_dirs,
            ckpt_files=(Path(ckpt).expanduser().resolve(),) if ckpt else (),
            vae_dir=Path(vae_dir).expanduser().resolve() if vae_dir else models / MODEL_SUBDIRS["vae"],
            lora_dir=Path(lora_dir).expanduser().resolve() if lora_dir else models / MODEL_SUBDIRS["lora"],
            controlnet_dir=(
                Path(controlnet_dir).expanduser().resolve()
                if controlnet_dir
                else models / MODEL_SUBDIRS["controlnet"]
            ),
            esrgan_dir=models / MODEL_SUBDIRS["esrgan"],
            embeddings_dir=Path(embeddings_dir).expanduser().resolve() if embeddings_dir else data / "embeddings",
            outputs_dir=data / "outputs",
            extensions_dir=data / "extensions",
            config_file=data / "config.json",
            ui_config_file=data / "ui-config.json",
            styles_file=data / "styles.csv",
            hash_cache_file=data / "cache.json",
            user_css_file=data / "user.css",
        )

    def model_dir(self, kind: str) -> Path:
        """Folder for a model kind named in MODEL_SUBDIRS (e.g. "lora" -> models/Lora)."""
        overrides = {"checkpoints": self.ckpt_dirs[0], "vae": self.vae_dir, "lora": self.lora_dir,
                     "controlnet": self.controlnet_dir, "esrgan": self.esrgan_dir}
        return overrides.get(kind, self.models_dir / MODEL_SUBDIRS.get(kind, kind))

    def ensure_writable(self) -> None:
        """Create the folders we write to; raise PermissionError naming the folder when we cannot."""
        import os

        for folder in (self.data_dir, self.outputs_dir, *self.ckpt_dirs[:1], self.vae_dir, self.lora_dir,
                       self.controlnet_dir, self.embeddings_dir):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PermissionError(f"cannot create folder {folder}: {exc.strerror or exc}") from exc
        if not os.access(self.data_dir, os.W_OK):
            raise PermissionError(f"data dir {self.data_dir} is not writable")
