"""The taggers this extension offers, each a provider of kind 'tagger' (api.register_tagger).

A tagger provider answers three calls (documented in docs/extensions.md):
- `models() -> list[str]`: the model names it runs, looked up when called (never at start-up);
- `scores(image, model) -> TagScores`: confidences per tag;
- `caption(image, model, options=None) -> str`: the prompt/caption text.
Missing weights or packages raise UserInputError with a message that names what is needed.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from modules.types import UserInputError

from .options import TagOptions, TagScores, caption_text
from .wd14 import Wd14Model, is_model_folder

INTERROGATORS_DIR = "interrogators"
DEEPDANBOORU_FILE = Path("torch_deepdanbooru") / "model-resnet_custom_v3.pt"
BLIP_FILE = Path("BLIP") / "model_base_caption_capfilt_large.pth"


class Wd14Catalog:
    """Every WD14 model folder under models/interrogators/, each model's session kept once loaded."""

    name = "wd14"

    def __init__(self, root: Path, *, cpu: bool = True, defaults: Callable[[], TagOptions] = TagOptions):
        self.root = Path(root)
        self._cpu = cpu
        self._defaults = defaults  # the options a caption without its own uses (the settings)
        self._models: dict[str, Wd14Model] = {}
        self._lock = threading.Lock()

    def models(self) -> list[str]:
        if not self.root.is_dir():
            return []
        found = (p.name for p in self.root.iterdir() if p.is_dir() and is_model_folder(p))
        return sorted(found, key=str.lower)

    def model(self, name: str) -> Wd14Model:
        folder = self.root / name
        if "/" in name or "\\" in name or name in ("", ".", "..") or not is_model_folder(folder):
            raise UserInputError(f"no WD14 tagger {name!r}: put model.onnx and selected_tags.csv in "
                                 f"{self.root / (name or '<name>')}")
        with self._lock:
            if name not in self._models:
                self._models[name] = Wd14Model(folder, cpu=self._cpu)
            return self._models[name]

    def scores(self, image: Image.Image, model: str) -> TagScores:
        return self.model(model).scores(image)

    def caption(self, image: Image.Image, model: str, options: TagOptions | None = None) -> str:
        return caption_text(self.scores(image, model), options or self._defaults())

    def unload(self) -> int:
        """Drop every loaded session; returns how many there were."""
        with self._lock:
            models = list(self._models.values())
        return sum(m.unload() for m in models)


class WeightsOnlyTagger:
    """A tagger whose network this build does not implement (DeepDanbooru, BLIP/CLIP): it is listed so that
    users and API clients get a message naming the weights file and saying what is missing."""

    def __init__(self, name: str, label: str, weights: Path, models_dir: Path):
        self.name = name
        self.label = label
        self.weights = Path(models_dir) / weights
        self._relative = Path("models") / weights

    def models(self) -> list[str]:
        return [self.name]

    def unavailable(self) -> str:
        if not self.weights.is_file():
            return (f"{self.label} needs its weights at {self._relative} (not found at {self.weights}); "
                    f"WD14 ONNX taggers in models/{INTERROGATORS_DIR}/<name>/ work without them")
        return (f"{self.label}: {self.weights} is present, but this build does not include the {self.label} "
                f"network; use a WD14 ONNX tagger (models/{INTERROGATORS_DIR}/<name>/model.onnx + "
                "selected_tags.csv)")

    def scores(self, image: Image.Image, model: str) -> TagScores:
        raise UserInputError(self.unavailable())

    def caption(self, image: Image.Image, model: str, options: TagOptions | None = None) -> str:
        raise UserInputError(self.unavailable())

    def unload(self) -> int:
        return 0


class Taggers:
    """This extension's taggers together: resolve a model name (as the APIs and the UI send it)."""

    def __init__(self, models_dir: Path, *, cpu: bool = True,
                 defaults: Callable[[], TagOptions] = TagOptions):
        models_dir = Path(models_dir)
        self.wd14 = Wd14Catalog(models_dir / INTERROGATORS_DIR, cpu=cpu, defaults=defaults)
        self.deepdanbooru = WeightsOnlyTagger("deepdanbooru", "DeepDanbooru", DEEPDANBOORU_FILE, models_dir)
        self.clip = WeightsOnlyTagger("clip", "The BLIP/CLIP interrogator", BLIP_FILE, models_dir)

    def providers(self) -> list[tuple[str, object, tuple[str, ...]]]:
        """(name, provider, aliases) to register."""
        return [("wd14", self.wd14, ()), ("deepdanbooru", self.deepdanbooru, ("deepbooru",)),
                ("clip", self.clip, ("blip", "interrogate"))]

    def names(self) -> list[str]:
        """Every model name: the WD14 folders, then deepdanbooru and clip."""
        return [*self.wd14.models(), "deepdanbooru", "clip"]

    def resolve(self, model: str):
        """(provider, model name) for a name, or None when nothing answers to it."""
        wanted = (model or "").strip()
        if wanted.lower() in ("deepdanbooru", "deepbooru"):
            return self.deepdanbooru, "deepdanbooru"
        if wanted.lower() in ("clip", "blip", "interrogate"):
            return self.clip, "clip"
        for name in self.wd14.models():
            if name.lower() == wanted.lower():
                return self.wd14, name
        return None

    def unload(self) -> int:
        return self.wd14.unload()
