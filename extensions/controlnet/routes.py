"""sd-webui-controlnet's HTTP routes for models and settings (/controlnet/module_list and /detect live in
the preprocessors package)."""
from __future__ import annotations

from collections.abc import Callable

from .models import ControlNetLibrary

API_VERSION = 2  # what sd-webui-controlnet's /controlnet/version answers clients check against


def add_routes(api, library: ControlNetLibrary, unit_count: Callable[[], int]) -> None:
    def version() -> dict:
        return {"version": API_VERSION}

    def model_list(update: bool = False) -> dict:
        return {"model_list": [f.title for f in library.list(refresh=update)]}

    def settings() -> dict:
        count = unit_count()
        return {"control_net_unit_count": count, "control_net_max_models_num": count}

    api.add_route("/controlnet/version", version)
    api.add_route("/controlnet/model_list", model_list)
    api.add_route("/controlnet/settings", settings)
