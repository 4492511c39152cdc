"""Dataset tools (built in): the Train tab (Preprocess, Caption, Tag editor), the taggers (WD14 ONNX models
in models/interrogators/, DeepDanbooru and BLIP listed), interrogation in img2img and the API.

setup runs in every app start and every test that builds an app: it registers only. Model folders are
looked at, and onnxruntime and gradio imported, when something is used.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def setup(api) -> None:
    from .service import DatasetService

    from .tagger_settings import add_settings

    add_settings(api)
    service = DatasetService.from_api(api)
    # 1. taggers, for img2img's Interrogate buttons and any extension that wants captions
    for name, provider, aliases in service.taggers.providers():
        api.register("tagger", name, provider, aliases=aliases)
    # 2. HTTP routes: A1111's /sdapi/v1/interrogate, wd14-tagger's /tagger/v1, ours under /dataset/v1
    from . import routes_tags

    routes_tags.add_routes(api, service)
    if (HERE / "routes_preprocess.py").is_file():  # the preprocess part of this extension, once it exists
        from . import routes_preprocess

        routes_preprocess.add_routes(api)
    # 3. the Train tab's content: webui/ui/tabs/train.py renders the extension tab with elem_id "train"
    def build_train_tab():
        from . import ui_train

        ui_train.build(api, service)

    api.add_tab("Train", build_train_tab, elem_id="train")
