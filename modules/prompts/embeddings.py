"""Textual-inversion embeddings from the `embeddings/` folder: loading, width checks, trigger matching, hashes.

Formats read (tensors always loaded without unpickling code: `torch.load(weights_only=True)`):
  .pt / .bin   A1111 `{"string_to_param": {"*": tensor[N, W]}, ...}`, diffusers' one-key `{token: tensor}`,
               or the keys below;
  .safetensors SD1/SD2: one tensor (kohya's key is "emb_params"); SDXL: "clip_l" [N, 768] + "clip_g" [N, 1280].
The trigger word is the file stem, matched as a token sequence (longest first) in the tokenized prompt.
An embedding whose width does not fit the loaded model is listed in `skipped` with the reason, not raised.
`shorthash` is what A1111 writes into infotext as `TI hashes: "name: shorthash, ..."`: the first 10 hex
digits of the SHA-256 of the whole file.

One `EmbeddingDatabase` (ctx.embeddings) serves generation and the API alike. A reload reads the folder into
a new `EmbeddingFolder` and swaps it in at once, so readers on other threads always see one whole reading.
"""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

EMBEDDING_SUFFIXES = (".pt", ".bin", ".safetensors")
MAX_VECTORS = 75  # an embedding must fit in one chunk


class EmbeddingError(ValueError):
    """A file in the embeddings folder that is not a textual-inversion embedding we can read."""


@dataclass(frozen=True, eq=False)
class Embedding:
    """One embedding: `vectors` maps "" (SD1/SD2) or "clip_l"/"clip_g" (SDXL) to float32 [N, width]."""

    name: str
    path: Path
    vectors: dict[str, torch.Tensor]
    sha256: str

    @property
    def vector_count(self) -> int:
        return int(next(iter(self.vectors.values())).shape[0])

    @property
    def widths(self) -> dict[str, int]:
        return {key: int(tensor.shape[1]) for key, tensor in self.vectors.items()}

    @property
    def shorthash(self) -> str:
        """First 10 hex digits of the file's SHA-256, as A1111's `TI hashes` infotext carries."""
        return self.sha256[:10]


@dataclass(frozen=True)
class TriggerMatch:
    """A trigger found at a prompt position: `embedding` is None when that embedding was skipped."""

    name: str
    embedding: Embedding | None
    length: int  # tokens the trigger word spans in the prompt


class TriggerIndex:
    """Trigger token sequences of a set of embeddings, for one tokenizer (longest match wins)."""

    def __init__(self, entries: Iterable[tuple[str, Embedding | None]], tokenizer):
        self.by_first: dict[int, list[tuple[tuple[int, ...], str, Embedding | None]]] = {}
        for name, embedding in entries:
            ids = tuple(tokenizer(name, add_special_tokens=False).input_ids)
            if ids:
                self.by_first.setdefault(ids[0], []).append((ids, name, embedding))
        for candidates in self.by_first.values():
            candidates.sort(key=lambda item: -len(item[0]))

    def match(self, ids: Sequence[int], pos: int) -> TriggerMatch | None:
        """The longest trigger starting at `ids[pos]`, or None."""
        for trigger, name, embedding in self.by_first.get(ids[pos], ()):
            if tuple(ids[pos:pos + len(trigger)]) == trigger:
                return TriggerMatch(name, embedding, len(trigger))
        return None


@dataclass
class EmbeddingSet:
    """The embeddings usable with one model (`loaded`) and the others with the reason (`skipped`)."""

    loaded: dict[str, Embedding] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def trigger_index(self, tokenizer) -> TriggerIndex:
        """Triggers of loaded and skipped embeddings (skipped ones match only to be reported)."""
        entries = [(name, emb) for name, emb in self.loaded.items()]
        entries += [(name, None) for name in self.skipped if name not in self.loaded]
        return TriggerIndex(entries, tokenizer)

    def hashes(self, names: Iterable[str]) -> str:
        """Infotext value of `TI hashes` for the used `names`: "name: shorthash, ..." (empty when none)."""
        return ", ".join(f"{name}: {self.loaded[name].shorthash}" for name in names if name in self.loaded)


class EmbeddingDatabase:
    """All embedding files under a folder (recursive); `reload()` reads the folder again. Thread-safe."""

    def __init__(self, directory: str | Path | None):
        self.directory = Path(directory) if directory else None
        self._lock = threading.Lock()  # guards the swap of `_folder`
        self._reload_lock = threading.Lock()  # one reload at a time; readers never wait for one
        self._folder = EmbeddingFolder()
        self.reload()

    def snapshot(self) -> EmbeddingFolder:
        """The current reading of the folder (immutable: a later reload does not change it)."""
        with self._lock:
            return self._folder

    @property
    def embeddings(self) -> Mapping[str, Embedding]:
        return self.snapshot().embeddings

    @property
    def failed(self) -> Mapping[str, str]:
        """name -> why the file could not be read."""
        return self.snapshot().failed

    @property
    def duplicates(self) -> Mapping[str, str]:
        """relative path -> the file used instead (same stem)."""
        return self.snapshot().duplicates

    def get(self, name: str) -> Embedding | None:
        return self.snapshot().embeddings.get(name)

    def for_model(self, widths: Sequence[int] | None) -> EmbeddingSet:
        """Split by fit with a model whose text encoders have these token widths (None: accept all)."""
        return self.snapshot().for_model(widths)

    def listing(self, widths: Sequence[int] | None) -> EmbeddingListing:
        """What `/sdapi/v1/embeddings` shows, from one reading: the split for the model and every file."""
        folder = self.snapshot()
        return EmbeddingListing(usable=folder.for_model(widths), files=folder.embeddings)

    def reload(self) -> None:
        """Read every .pt/.bin/.safetensors file (hidden files and folders left out), first name wins."""
        with self._reload_lock:
            folder = read_folder(self.directory)
            with self._lock:
                self._folder = folder


@dataclass(frozen=True)
class EmbeddingFolder:
    """One reading of the embeddings folder."""

    embeddings: Mapping[str, Embedding] = field(default_factory=lambda: MappingProxyType({}))
    failed: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    duplicates: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def for_model(self, widths: Sequence[int] | None) -> EmbeddingSet:
        """Split by fit with a model whose text encoders have these token widths (None: accept all)."""
        result = EmbeddingSet(skipped=dict(self.failed))
        for name, embedding in self.embeddings.items():
            reason = None if widths is None else width_mismatch(embedding, widths)
            if reason is None and embedding.vector_count > MAX_VECTORS:
                reason = f"{embedding.vector_count} vectors do not fit in one {MAX_VECTORS}-token chunk"
            if reason is None:
                result.loaded[name] = embedding
            else:
                result.skipped[name] = reason
        return result


@dataclass(frozen=True)
class EmbeddingListing:
    """`usable`: loaded/skipped for the current model; `files`: every readable embedding by name."""

    usable: EmbeddingSet
    files: Mapping[str, Embedding]


def read_folder(directory: Path | None) -> EmbeddingFolder:
    """Read the embeddings under `directory` (None or missing: none); bad files are listed, not raised."""
    embeddings: dict[str, Embedding] = {}
    failed: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    if directory is not None and directory.is_dir():
        for path in sorted(directory.rglob("*")):
            rel = path.relative_to(directory)
            if path.suffix.lower() not in EMBEDDING_SUFFIXES or any(p.startswith(".") for p in rel.parts):
                continue
            if not path.is_file():
                continue
            name = path.stem
            if name in embeddings or name in failed:
                duplicates[str(rel)] = f"duplicate name {name!r}, the first file of that name is used"
                continue
            try:
                embeddings[name] = load_embedding(path)
            except Exception as exc:  # noqa: BLE001 - a bad file must never stop the others from loading
                failed[name] = f"could not load {rel}: {exc}"
    return EmbeddingFolder(MappingProxyType(embeddings), MappingProxyType(failed), MappingProxyType(duplicates))


def width_mismatch(embedding: Embedding, widths: Sequence[int]) -> str | None:
    """Why `embedding` cannot be used with text encoders of these widths, or None when it fits."""
    have = embedding.widths
    if len(widths) == 2:
        need = {"clip_l": widths[0], "clip_g": widths[1]}
        if have != need:
            got = ", ".join(f"{k or 'vectors'} {v}" for k, v in have.items())
            return f"width {got} does not match the model (clip_l {widths[0]} + clip_g {widths[1]})"
        return None
    if set(have) != {""} or have[""] != widths[0]:
        got = ", ".join(f"{k or 'vectors'} {v}" for k, v in have.items())
        return f"width {got} does not match the model's text encoder ({widths[0]})"
    return None


def load_embedding(path: str | Path) -> Embedding:
    """Read one embedding file; raises EmbeddingError for a file of another kind."""
    import torch

    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        data: Any = load_file(str(path), device="cpu")
    else:
        data = torch.load(path, map_location="cpu", weights_only=True)
    vectors = _vectors_of(data)
    return Embedding(path.stem, path, vectors, _sha256(path))


def _vectors_of(data: Any) -> dict[str, torch.Tensor]:
    import torch

    if not isinstance(data, dict):
        raise EmbeddingError(f"expected a dict of tensors, found {type(data).__name__}")
    if "clip_l" in data and "clip_g" in data:
        return {"clip_l": _matrix(data["clip_l"]), "clip_g": _matrix(data["clip_g"])}
    if "string_to_param" in data:  # A1111's own training output
        params = data["string_to_param"]
        if not isinstance(params, dict) or len(params) != 1:
            raise EmbeddingError("string_to_param must hold exactly one tensor")
        return {"": _matrix(next(iter(params.values())))}
    if "emb_params" in data:  # kohya
        return {"": _matrix(data["emb_params"])}
    tensors = [value for value in data.values() if isinstance(value, torch.Tensor)]
    if len(data) == 1 and len(tensors) == 1:  # diffusers: {"<token>": tensor}
        return {"": _matrix(tensors[0])}
    raise EmbeddingError(f"unknown embedding layout with keys {sorted(map(str, data))[:6]}")


def _matrix(value: Any) -> torch.Tensor:
    import torch

    if not isinstance(value, torch.Tensor):
        raise EmbeddingError(f"expected a tensor, found {type(value).__name__}")
    tensor = value.detach().to(torch.float32)
    if tensor.ndim == 1:
        tensor = tensor.unsqueeze(0)  # one vector saved without its row axis
    if tensor.ndim != 2:
        tensor = tensor.reshape(-1, tensor.shape[-1])
    if tensor.shape[0] == 0:
        raise EmbeddingError("embedding has no vectors")
    return tensor.contiguous()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
