"""Dataset tools (built in): the Train tab (Preprocess, Caption, Tag editor), Preprocess as Extras steps, the
taggers (WD14 ONNX models in models/interrogators/, DeepDanbooru and BLIP listed), interrogation in img2img
and the API.

setup runs in every app start and every test that builds an app: it registers only. Model folders are
looked at, and onnxruntime and gradio imported, when something is used.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def setup(api) -> None:
    from . import extras_steps, routes_preprocess, routes_tags
    from .service import DatasetService
    from .tagger_settings import add_settings

    # 1. settings: Settings -> Interrogate (caption options); the preprocess part adds its own below
    add_settings(api)
    service = DatasetService.from_api(api)
    # 2. taggers, for img2img's Interrogate buttons and any extension that wants captions
    for name, provider, aliases in service.taggers.providers():
        api.register("tagger", name, provider, aliases=aliases)
    # 3. HTTP routes: A1111's /sdapi/v1/interrogate, wd14-tagger's /tagger/v1, ours under /dataset/v1
    routes_tags.add_routes(api, service)
    routes_preprocess.add_routes(api)  # POST /dataset/v1/preprocess and the focal-crop settings
    # 4. Preprocess as Extras steps (split, focal crop, auto-size, flipped copies, caption)
    extras_steps.add_steps(api, service)
    # 5. the Train tab's content: webui/ui/tabs/train.py renders the extension tab with elem_id "train"
    def build_train_tab():
        from . import ui_train

        ui_train.build(api, service)

    api.add_tab("Train", build_train_tab, elem_id="train")
