"""WD14-style ONNX taggers (SmilingWolf's wd-* models and their format): one folder per model in
`models/interrogators/<name>/` holding `model.onnx` and `selected_tags.csv`.

The format, as its model cards and the wd14-tagger extension describe it:
- input: one NHWC float32 tensor, BGR channel order, values 0..255 (no normalisation), square; the side
  is the model's input shape (448 for the published models). Images are padded to a square with white
  (centred) and resized to that side.
- output: one [batch, N] tensor of sigmoid confidences, in the CSV's row order.
- CSV columns: tag_id, name, category (9 rating, 0 general, 4 character), count.

onnxruntime is imported when a model first runs, never at start-up; sessions are kept per catalog.
"""
from __future__ import annotations

import csv
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from modules.types import UserInputError

from .options import TagScores

MODEL_FILE, TAGS_FILE = "model.onnx", "selected_tags.csv"
CATEGORY = {"9": "rating", "0": "general", "4": "character"}


@dataclass(frozen=True)
class TagRow:
    name: str
    category: str  # rating | general | character | other


def read_tags_csv(path: Path) -> list[TagRow]:
    """The CSV's rows in order (the model's output order); needs the 'name' and 'category' columns."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"name", "category"} - set(reader.fieldnames or ())
        if missing:
            raise UserInputError(f"{path}: missing column(s) {', '.join(sorted(missing))} "
                                 "(expected tag_id,name,category,count)")
        return [TagRow(row["name"], CATEGORY.get(str(row["category"]).strip(), "other")) for row in reader]


def prepare(image: Image.Image, side: int) -> np.ndarray:
    """[1, side, side, 3] float32 BGR 0..255: alpha flattened on white, padded square with white."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.split()[3])
        image = flat
    image = image.convert("RGB")
    width, height = image.size
    square = max(width, height)
    canvas = Image.new("RGB", (square, square), (255, 255, 255))
    canvas.paste(image, ((square - width) // 2, (square - height) // 2))
    if square != side:
        canvas = canvas.resize((side, side), Image.Resampling.BICUBIC)
    rgb = np.asarray(canvas, dtype=np.float32)
    return np.ascontiguousarray(rgb[:, :, ::-1])[None]


class Wd14Model:
    """One model folder; the onnxruntime session is made on first use."""

    def __init__(self, folder: Path, *, cpu: bool = True):
        self.folder = Path(folder)
        self.name = self.folder.name
        self._cpu = cpu
        self._session = None
        self._tags: list[TagRow] = []
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def unload(self) -> bool:
        with self._lock:
            was, self._session = self._session is not None, None
        return was

    def _load(self):
        try:
            import onnxruntime
        except ImportError:
            raise UserInputError("WD14 taggers need the onnxruntime package (pip install onnxruntime)") \
                from None
        providers = ["CPUExecutionProvider"]
        if not self._cpu and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            session = onnxruntime.InferenceSession(str(self.folder / MODEL_FILE), providers=providers)
        except Exception as exc:  # onnxruntime raises its own types for broken files
            raise UserInputError(f"{self.folder / MODEL_FILE}: cannot load: {exc}") from None
        tags = read_tags_csv(self.folder / TAGS_FILE)
        outputs = session.get_outputs()[0].shape
        if isinstance(outputs[-1], int) and outputs[-1] != len(tags):
            raise UserInputError(f"{self.name}: the model gives {outputs[-1]} confidences but {TAGS_FILE} "
                                 f"lists {len(tags)} tags")
        self._tags = tags
        return session

    def side(self, session) -> int:
        shape = session.get_inputs()[0].shape  # [batch, H, W, 3]
        side = shape[1] if len(shape) == 4 else None
        return side if isinstance(side, int) and side > 0 else 448

    def scores(self, image: Image.Image) -> TagScores:
        """Every tag's confidence for one image."""
        with self._lock:
            if self._session is None:
                self._session = self._load()
            session, tags = self._session, self._tags
        batch = prepare(image, self.side(session))
        probs = session.run(None, {session.get_inputs()[0].name: batch})[0][0]
        by_category: dict[str, dict[str, float]] = {"rating": {}, "general": {}, "character": {}}
        for row, p in zip(tags, probs):
            if row.category in by_category:
                by_category[row.category][row.name] = float(p)
        return TagScores(**by_category)


def is_model_folder(folder: Path) -> bool:
    return (folder / MODEL_FILE).is_file() and (folder / TAGS_FILE).is_file()
