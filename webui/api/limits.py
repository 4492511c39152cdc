"""The API's resource limits: settings (section "api") read per request, and the checks made before a
request is queued. A client cannot change them through POST /options (see LOCKED_SETTINGS): they are set in
the UI's Settings tab or in config.json. SECURITY.md lists them with their defaults.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from modules.settings import SettingSpec
from modules.types import UserInputError
from webui.api.image_input import PIXELS_SETTING, URL_SETTING

BODY_SETTING = "api_max_body_mb"
PROMPT_SETTING = "api_max_prompt_length"
INFOTEXT_SETTING = "api_max_infotext_length"
IMAGES_SETTING = "api_max_images"
QUEUE_SETTING = "api_queue_limit"
DISCONNECT_SETTING = "api_cancel_on_disconnect"

# Names, sampler and upscaler names, style names, ...: never long; a fixed limit, not a setting.
MAX_NAME_LENGTH = 1024
MAX_LIST_ITEMS = 256
PROMPT_FIELDS = ("prompt", "negative_prompt", "hr_prompt", "hr_negative_prompt")

SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(URL_SETTING, False, "API: allow http(s) URLs as input images (never to local addresses)", "api"),
    SettingSpec(BODY_SETTING, 64, "API: largest request body, in MB (larger ones are answered 413)", "api"),
    SettingSpec(PROMPT_SETTING, 32768, "API: longest prompt or negative prompt, in characters", "api"),
    SettingSpec(INFOTEXT_SETTING, 100000, "API: longest infotext field, in characters", "api"),
    SettingSpec(IMAGES_SETTING, 16, "API: most input images in one request (init_images, Extras batch)", "api"),
    SettingSpec(PIXELS_SETTING, 8192 * 8192, "API: most pixels of one input image (width x height)", "api"),
    SettingSpec(QUEUE_SETTING, 200, "API: most jobs waiting in the queue (more are answered 503)", "api"),
    SettingSpec(DISCONNECT_SETTING, True, "API: cancel a synchronous request's job when its client disconnects",
                "api"),
)
# What protects the server from its clients is not the clients' to change.
LOCKED_SETTINGS = frozenset(spec.key for spec in SETTINGS)


@dataclass(frozen=True)
class ApiLimits:
    """The limits in force for one request; sizes in bytes, lengths in characters."""

    max_body_bytes: int
    max_prompt_length: int
    max_infotext_length: int
    max_images: int
    max_image_pixels: int
    queue_limit: int
    cancel_on_disconnect: bool

    @classmethod
    def from_settings(cls, settings) -> ApiLimits:
        return cls(
            max_body_bytes=int(settings.get(BODY_SETTING)) * 2**20,
            max_prompt_length=int(settings.get(PROMPT_SETTING)),
            max_infotext_length=int(settings.get(INFOTEXT_SETTING)),
            max_images=int(settings.get(IMAGES_SETTING)),
            max_image_pixels=int(settings.get(PIXELS_SETTING)),
            queue_limit=int(settings.get(QUEUE_SETTING)),
            cancel_on_disconnect=bool(settings.get(DISCONNECT_SETTING)),
        )


def register_settings(settings) -> None:
    for spec in SETTINGS:
        settings.register(spec)


def check_length(value: str | None, limit: int, field: str, setting: str = "") -> None:
    """UserInputError when `value` has more than `limit` characters (0 or less: no limit)."""
    if value and 0 < limit < len(value):
        where = f" (setting {setting})" if setting else ""
        raise UserInputError(f"{len(value)} characters; at most {limit} are allowed{where}", field=field)


def check_count(count: int, limit: int, field: str, setting: str = "") -> None:
    if 0 < limit < count:
        where = f" (setting {setting})" if setting else ""
        raise UserInputError(f"{count} images; at most {limit} are allowed in one request{where}", field=field)


def check_text_fields(body, limits: ApiLimits, *, long_fields: Iterable[str] = ()) -> None:
    """Every top-level string (and list of strings) of a request body: prompts and the infotext against
    their settings, any other string against MAX_NAME_LENGTH. `long_fields` are checked elsewhere
    (images as base64)."""
    skip = set(long_fields)
    for name in type(body).model_fields:
        if name in skip:
            continue
        value = getattr(body, name)
        if name in PROMPT_FIELDS:
            check_length(value, limits.max_prompt_length, name, PROMPT_SETTING)
        elif name == "infotext":
            check_length(value, limits.max_infotext_length, name, INFOTEXT_SETTING)
        elif isinstance(value, str):
            check_length(value, MAX_NAME_LENGTH, name)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            if len(value) > MAX_LIST_ITEMS:
                raise UserInputError(f"{len(value)} entries; at most {MAX_LIST_ITEMS}", field=name)
            for index, item in enumerate(value):
                check_length(item, MAX_NAME_LENGTH, f"{name}[{index}]")
