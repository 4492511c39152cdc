"""The built-in ControlNet extension: setup registers the section, the UNet hook, routes, infotext fields and
settings. Setup is cheap: no model folder scan, no model load (those happen on first use)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from . import infotext
from .models import ControlNetLibrary
from .runner import ControlNetRunner
from .units import UI_FIELDS

UNIT_COUNT_SETTING = "control_net_unit_count"  # A1111's key
DEFAULT_UNIT_COUNT = 3
MODEL_CACHE_SETTING = "control_net_model_cache_size"


def controlnet_dir(api) -> Path:
    """--controlnet-dir, else models/ControlNet."""
    folder = api.flag("controlnet_dir")
    return Path(folder) if folder else api.models_dir / "ControlNet"


def bundled_configs_dir(api) -> Path:
    return api.root.resolve().parent.parent / "configs"


def setup(api) -> None:
    unit_count = _setting(api, UNIT_COUNT_SETTING, DEFAULT_UNIT_COUNT)
    api.add_setting(UNIT_COUNT_SETTING, DEFAULT_UNIT_COUNT,
                    "Multi-ControlNet: number of units (restart to apply)", section="ControlNet")
    api.add_setting(MODEL_CACHE_SETTING, 2, "ControlNet models kept loaded", section="ControlNet")
    library = ControlNetLibrary(controlnet_dir(api), bundled_configs_dir(api),
                                keep=max(1, int(_setting(api, MODEL_CACHE_SETTING, 2))))
    cache, annotators = None, controlnet_dir(api) / "annotators"
    try:
        from . import preprocessors
        from .preprocessors import routes as preprocessor_routes
    except ImportError as exc:
        api.log.warning("ControlNet preprocessors unavailable (%s); module \"none\" only", exc)
    else:
        annotators = preprocessors.annotators_dir_for(api)
        cache = preprocessors.register_all(api, annotators)
        preprocessor_routes.add_routes(api, cache)
    runner = ControlNetRunner(library, annotators, extension=api.name, preprocessor_cache=cache)
    api.on("patch_pipeline", runner.patch_pipeline)
    api.on("on_step", runner.on_step)

    from .routes import add_routes

    add_routes(api, library, lambda: int(_setting(api, UNIT_COUNT_SETTING, DEFAULT_UNIT_COUNT)))
    for index in range(unit_count):
        # The whole unit is one quoted value, pasted into the unit's module dropdown (ui.paste_arg);
        # ui.py turns it into its widgets' values.
        api.add_infotext_field(infotext.label(index), arg=index * len(UI_FIELDS) + UI_FIELDS.index("module"))
    _add_section(api, unit_count, library, cache)


def _add_section(api, unit_count: int, library: ControlNetLibrary, cache) -> None:
    try:
        from .ui import build_section, services_from_api
    except ImportError as exc:
        api.log.warning("ControlNet UI section unavailable (%s); the API works without it", exc)
        return
    services = services_from_api(api, library)  # cheap: lists models only when the section is built
    if cache is not None:
        services = dataclasses.replace(services, cache=cache)  # one detector cache for UI, API and generation
    api.add_section("ControlNet", lambda is_img2img: build_section(bool(is_img2img), unit_count, services))


def _setting(api, key: str, default):
    try:
        value = api.setting(key)
    except (KeyError, ValueError):
        return default
    return default if value is None else value


__all__ = ["UI_FIELDS", "setup"]
