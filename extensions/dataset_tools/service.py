"""What the UI and the routes share: the taggers, the folder rule, and the calls both make."""
from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from modules.types import UserInputError

from .captions import FILENAME, CaptionReport, CaptionRequest, caption_folder
from .folders import resolve_folder
from .taggers.catalog import Taggers
from .taggers.options import TagOptions


class ModelNotFound(LookupError):
    """No tagger answers to the name (HTTP 404)."""


@dataclass
class DatasetService:
    taggers: Taggers
    data_dir: Path
    listen: bool = False
    insecure: bool = False

    @classmethod
    def from_api(cls, api) -> DatasetService:
        from .tagger_settings import options_from_settings

        use_cpu = {str(v).lower() for v in (api.flag("use_cpu") or ())}
        taggers = Taggers(api.models_dir, cpu=bool(use_cpu & {"all", "tagger"}),
                          defaults=lambda: options_from_settings(api))
        return cls(taggers, api.data_dir,
                   bool(api.flag("listen", False)), bool(api.flag("enable_insecure_extension_access", False)))

    def folder(self, raw: str) -> Path:
        return resolve_folder(raw, data_dir=self.data_dir, listen=self.listen, insecure=self.insecure)

    def tagger(self, model: str):
        found = self.taggers.resolve(model)
        if found is None:
            known = ", ".join(self.taggers.names())
            raise ModelNotFound(f"model {model!r} not found; known: {known} (WD14 taggers are folders in "
                                f"models/interrogators/ with model.onnx and selected_tags.csv)")
        return found

    def interrogate(self, image: Image.Image, model: str, options: TagOptions | None = None) -> str:
        provider, name = self.tagger(model)
        return provider.caption(image, name, options)

    def caption(self, request: CaptionRequest,
                progress: Callable[[int, int], None] | None = None) -> CaptionReport:
        """Caption the folder; `progress(done, total)` is called before each image and at the end."""
        if request.tagger == FILENAME:
            return caption_folder(request, caption=None, progress=progress)
        provider, name = self.tagger(request.tagger)
        if hasattr(provider, "unavailable"):  # fail once, not once per image
            raise UserInputError(provider.unavailable())
        return caption_folder(request, lambda image: provider.caption(image, name, request.options), progress)


def decode_image(text: str, field: str = "image") -> Image.Image:
    """A PIL image from base64 (a `data:image/...;base64,` prefix allowed)."""
    text = (text or "").strip()
    if not text:
        raise UserInputError(f"{field}: no image given")
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        data = base64.b64decode(text, validate=False)
        image = Image.open(io.BytesIO(data))
        image.load()
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UserInputError(f"{field}: not a readable base64 image ({exc})") from None
    return image
