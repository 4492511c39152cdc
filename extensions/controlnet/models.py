"""ControlNet model files: find them (models/ControlNet or --controlnet-dir), name them as sd-webui-controlnet
does ("stem [hash]"), tell their family from the weights' names and shapes, and load them once.

Single files (.safetensors, .pth, .ckpt, .bin) in the original LDM layout (`control_model.*`) or with
diffusers names are converted with diffusers' own key conversion and loaded against a diffusers config:
a sibling `<stem>.config/` folder when there is one, else the bundled `configs/controlnet-<family>`.
Diffusers folders (config.json + weights) load with from_pretrained. Nothing is ever downloaded.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modules.types import UserInputError

SUFFIXES = (".safetensors", ".pth", ".ckpt", ".bin", ".pt")
FAMILIES = ("sd1", "sd2", "sdxl")
LDM_PREFIX = "control_model."
# Read from each folder's config: what must agree between a ControlNet and the UNet it steers.
_MATCH_KEYS = ("cross_attention_dim", "addition_embed_type")


@dataclass(frozen=True)
class ControlNetFile:
    """One ControlNet on disk; `title` is the name the API and infotext use ("stem [hash]")."""

    name: str  # file stem or folder name
    path: Path
    shorthash: str  # A1111's legacy 8-hex model hash (files), "" for folders
    family: str  # "sd1", "sd2", "sdxl" or "" when the weights do not say

    @property
    def title(self) -> str:
        return f"{self.name} [{self.shorthash}]" if self.shorthash else self.name


def legacy_hash(path: Path) -> str:
    """A1111's old model hash (8 hex): sha256 of 64 KiB at offset 1 MiB (sd-webui-controlnet's names)."""
    with open(path, "rb") as f:
        f.seek(0x100000)
        return hashlib.sha256(f.read(0x10000)).hexdigest()[:8]


def family_of_config(config: dict[str, Any]) -> str:
    """sdxl (text_time embedding), sd2 (1024-wide text context) or sd1 (anything else, tiny models too)."""
    if config.get("addition_embed_type") == "text_time":
        return "sdxl"
    return "sd2" if config.get("cross_attention_dim") == 1024 else "sd1"


def family_of_keys(shapes: dict[str, tuple[int, ...]]) -> str:
    """The family from parameter names and shapes (works for LDM and diffusers names)."""
    names = set(shapes)
    if names & {"add_embedding.linear_1.weight", LDM_PREFIX + "label_emb.0.0.weight", "label_emb.0.0.weight"}:
        return "sdxl"
    for key, shape in shapes.items():
        if key.endswith("attn2.to_k.weight") and len(shape) == 2:
            return "sd2" if shape[1] == 1024 else "sd1"
    return "sd1"


class ControlNetLibrary:
    """The ControlNet folder's models and the loaded ones (cached by path + mtime, at most `keep` at once)."""

    def __init__(self, folder: Path, configs_dir: Path, keep: int = 2):
        self.folder = Path(folder)
        self.configs_dir = Path(configs_dir)
        self.keep = keep
        self._lock = threading.RLock()
        self._files: dict[tuple[str, float], ControlNetFile] = {}  # (path, mtime) -> described file
        self._loaded: dict[tuple[str, float, str, str], Any] = {}  # + device, dtype -> ControlNetModel

    # -- listing -------------------------------------------------------------------------------
    def list(self, family: str | None = None, refresh: bool = False) -> list[ControlNetFile]:
        """Models in the folder (sorted by name), only those of `family` when given (unknown ones kept)."""
        with self._lock:
            if refresh:
                self._files.clear()
            found = [self._describe(p) for p in self._candidates()]
        found = [f for f in found if f is not None]
        if family:
            found = [f for f in found if f.family in ("", family)]
        return sorted(found, key=lambda f: f.name.lower())

    def find(self, query: str) -> ControlNetFile | None:
        """The model named by title ("name [hash]"), name, file name, or hash; None when none matches."""
        text = query.strip()
        if not text or text.lower() == "none":
            return None
        files = self.list()
        name, _, rest = text.partition(" [")
        wanted_hash = rest.rstrip("]").strip().lower() if rest else ""
        for f in files:
            if f.title == text or f.path.name == text:
                return f
        for f in files:  # by name: a changed file keeps working under its old hash
            if f.name.lower() == name.lower():
                return f
        for f in files:
            if wanted_hash and f.shorthash == wanted_hash:
                return f
        return None

    def _candidates(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        out = []
        for p in sorted(self.folder.rglob("*")):
            if "annotators" in p.relative_to(self.folder).parts[:1]:  # preprocessor weights, not ControlNets
                continue
            if p.is_file() and p.suffix.lower() in SUFFIXES and _is_weights(p):
                out.append(p)
            elif p.is_dir() and not p.name.endswith(".config") and _is_diffusers_folder(p):
                out.append(p)
        return out

    def _describe(self, path: Path) -> ControlNetFile | None:
        try:
            key = (str(path), path.stat().st_mtime)
        except OSError:
            return None
        cached = self._files.get(key)
        if cached is not None:
            return cached
        if path.is_dir():
            config = json.loads((path / "config.json").read_text())
            described = ControlNetFile(path.name, path, "", family_of_config(config))
        else:
            sidecar = path.with_name(path.stem + ".config") / "config.json"
            try:
                if sidecar.is_file():
                    family = family_of_config(json.loads(sidecar.read_text()))
                else:
                    family = family_of_keys(_shapes(path))
                shorthash = legacy_hash(path)
            except Exception:  # noqa: BLE001 - a broken file is listed; loading it says what is wrong
                family, shorthash = "", legacy_hash(path) if path.stat().st_size else "00000000"
            described = ControlNetFile(path.stem, path, shorthash, family)
        self._files[key] = described
        return described

    # -- loading -------------------------------------------------------------------------------
    def load(self, entry: ControlNetFile, *, device: Any, dtype: Any, unet_config: dict[str, Any]):
        """The ControlNetModel for `entry` on `device`/`dtype`, loaded once per file version; raises
        UserInputError when it is not a ControlNet, is unreadable, or does not fit `unet_config`."""
        import torch

        mtime = entry.path.stat().st_mtime
        key = (str(entry.path), mtime, str(torch.device(device)), str(dtype))
        with self._lock:
            model = self._loaded.get(key)
            if model is None:
                model = self._read(entry).to(device=device, dtype=dtype).eval().requires_grad_(False)
                for old in [k for k in self._loaded if k[0] == key[0]]:  # an older version of the same file
                    del self._loaded[old]
                while len(self._loaded) >= self.keep:
                    del self._loaded[next(iter(self._loaded))]
                self._loaded[key] = model
        check_fits(entry, dict(model.config), unet_config)
        return model

    def loaded_count(self) -> int:
        return len(self._loaded)

    def _read(self, entry: ControlNetFile):
        from diffusers import ControlNetModel

        if entry.path.is_dir():
            try:
                return ControlNetModel.from_pretrained(entry.path, local_files_only=True)
            except Exception as exc:  # noqa: BLE001 - shown to the user as what is wrong with the folder
                raise UserInputError(
                    f"ControlNet {entry.name}: cannot load the folder ({_short(exc)})") from None
        return self._read_single_file(entry)

    def _read_single_file(self, entry: ControlNetFile):
        import torch
        from diffusers import ControlNetModel
        from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

        try:
            state = _read_state_dict(entry.path)
        except Exception as exc:  # noqa: BLE001
            raise UserInputError(
                f"ControlNet {entry.path.name}: not a readable model file ({_short(exc)})") from None
        if not any(k.startswith((LDM_PREFIX, "input_hint_block.", "controlnet_cond_embedding."))
                   for k in state):
            raise UserInputError(f"ControlNet {entry.path.name}: not a ControlNet (no control_model.* or "
                                 "controlnet_cond_embedding.* weights)")
        config_dir = self._config_dir(entry)
        config = ControlNetModel.load_config(str(config_dir), local_files_only=True)
        raw = state
        state = dict(convert_controlnet_checkpoint(raw, config))
        # diffusers' conversion leaves LDM SDXL's label_emb (the text_time embedding) out: map it here.
        for ldm, ours in (("label_emb.0.0", "add_embedding.linear_1"),
                          ("label_emb.0.2", "add_embedding.linear_2")):
            for part in ("weight", "bias"):
                value = raw.get(f"{LDM_PREFIX}{ldm}.{part}", raw.get(f"{ldm}.{part}"))
                if value is not None and f"{ours}.{part}" not in state:
                    state[f"{ours}.{part}"] = value
        state = {k: v for k, v in state.items()
                 if v is not None and not k.startswith("controlnet_cond_embedding.")}
        state.update(_hint_encoder(raw, config))
        with torch.device("meta"):
            model = ControlNetModel.from_config(config)
        expected = set(model.state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise UserInputError(
                f"ControlNet {entry.path.name}: its weights do not fit {config_dir.name} "
                f"({len(missing)} missing, e.g. {missing[:1]}; "
                f"{len(unexpected)} unexpected, e.g. {unexpected[:1]})")
        try:
            model.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as exc:  # shapes differ from the config
            raise UserInputError(f"ControlNet {entry.path.name}: its weights do not fit {config_dir.name} "
                                 f"({_short(exc)})") from None
        return model

    def _config_dir(self, entry: ControlNetFile) -> Path:
        sidecar = entry.path.with_name(entry.path.stem + ".config")
        if (sidecar / "config.json").is_file():
            return sidecar
        return self.configs_dir / f"controlnet-{'sd15' if entry.family in ('', 'sd1') else entry.family}"


def check_fits(entry: ControlNetFile, config: dict[str, Any], unet_config: dict[str, Any]) -> None:
    """UserInputError when the ControlNet was trained for another model family than the checkpoint's."""
    for key in _MATCH_KEYS:
        if config.get(key) != unet_config.get(key):
            theirs, ours = family_of_config(config), family_of_config(unet_config)
            raise UserInputError(f"ControlNet {entry.name} is made for {theirs.upper()} and cannot be used "
                                 f"with this {ours.upper()} checkpoint ({key}: {config.get(key)} vs "
                                 f"{unet_config.get(key)})")


def _hint_encoder(raw: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The hint encoder's weights: LDM's input_hint_block is conv, SiLU, conv, ... (convs at even indices,
    the last is conv_out: index 14 for the usual six blocks); diffusers names are kept as they are."""
    blocks = 2 * (len(config.get("conditioning_embedding_out_channels") or (16, 32, 96, 256)) - 1)
    names = {0: "conv_in", 2 * (blocks + 1): "conv_out"}
    names.update({2 * (j + 1): f"blocks.{j}" for j in range(blocks)})
    out = {}
    for key, value in raw.items():
        bare = key[len(LDM_PREFIX):] if key.startswith(LDM_PREFIX) else key
        if bare.startswith("controlnet_cond_embedding."):
            out[bare] = value
        elif bare.startswith("input_hint_block."):
            index, _, part = bare[len("input_hint_block."):].partition(".")
            name = names.get(int(index)) if index.isdigit() else None
            out[f"controlnet_cond_embedding.{name or 'unknown_' + index}.{part}"] = value
    return out


def _is_weights(path: Path) -> bool:
    # A diffusers folder's own weights file is the folder's, not a model of its own.
    return not (path.parent / "config.json").is_file() or path.suffix.lower() in (".pth", ".ckpt")


def _is_diffusers_folder(path: Path) -> bool:
    config = path / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("_class_name") == "ControlNetModel"
    except (OSError, ValueError):
        return False


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes, without reading the tensors when the file is .safetensors."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    return {k: tuple(v.shape) for k, v in _read_state_dict(path).items()}


def _read_state_dict(path: Path) -> dict[str, Any]:
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError("no state dict inside")
    return state


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return text[:200]
