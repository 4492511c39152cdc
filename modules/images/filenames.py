"""File and folder names from A1111 patterns: `[seed]-[prompt_words]`, `[datetime<%Y%m%d>]`, `[hasprompt<a|b>]`.

Behaviour follows A1111's Custom Images Filename Name and Subdirectory rules (learned from its docs and
behaviour, not its code): tokens are case-insensitive, a token may take `<arguments>`, a known token without a
value gives "" (some, like [batch_number] on a single image, also drop the text written just before them), and
an unknown token stays as written so a typo shows in the name.
"""
from __future__ import annotations

import hashlib
import os
import re
import string
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from modules.types import GenerationRequest

# Not allowed in file names on some system, or trouble in URLs ('#') and shells; A1111 removes the same kind.
_BAD_NAME_CHARS = re.compile(r'[<>:"/\\|?*#\x00-\x1f\x7f]')
_WINDOWS_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                               *(f"lpt{i}" for i in range(1, 10))})
# `[name]` or `[name<arg><arg>]`; brackets cannot nest.
_TOKEN = re.compile(r"\[(\w+)((?:<[^<>\[\]]*>)*)\]")
_ARG = re.compile(r"<([^<>]*)>")
# Tokens a pattern may use; one without a value becomes "", a name not listed stays as written.
KNOWN_TOKENS = frozenset({
    "seed", "seed_first", "seed_last", "prompt", "prompt_spaces", "prompt_words", "prompt_no_styles",
    "prompt_hash", "negative_prompt", "negative_prompt_hash", "full_prompt_hash", "steps", "cfg", "sampler",
    "sampler_name", "scheduler", "width", "height", "styles", "model_name", "model_hash", "date", "datetime",
    "job_timestamp", "batch_number", "batch_size", "generation_number", "clip_skip", "denoising", "hasprompt",
    "vae_filename", "user", "image_hash", "none",
})
# The value that also removes the literal text before the token ("-[batch_number]" on a single image).
SKIP_WITH_PREVIOUS = object()
DEFAULT_DATETIME = "%Y%m%d%H%M%S"
_NUMBER = re.compile(r"^(\d+)(?:[-.]|$)")
_WORD_SPLIT = re.compile(r"[\s" + re.escape(string.punctuation) + r"]+")
# A1111 cuts a prompt-like part at 128 characters before it becomes part of a name.
_PART_CHARS = 128


def sanitize_name(text: str, max_bytes: int = 200) -> str:
    """A file-name-safe version of `text`, at most `max_bytes` UTF-8 bytes."""
    text = _BAD_NAME_CHARS.sub("", text).lstrip(" ")
    encoded = text.encode("utf-8")[:max_bytes]
    text = encoded.decode("utf-8", errors="ignore")  # a cut inside a character drops it
    text = text.rstrip(" .")  # Windows drops trailing dots and spaces
    if text.split(".")[0].lower() in _WINDOWS_RESERVED:
        text = "_" + text
    return text


def _hash8(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def name_tokens(request: GenerationRequest, *, seed: int, prompt: str | None = None,
                model_name: str = "", model_hash: str = "", negative_prompt: str | None = None,
                index: int = 0, all_seeds: list[int] | None = None, job_timestamp: str = "",
                width: int | None = None, height: int | None = None) -> dict[str, Any]:
    """Values for file-name pattern tokens ([seed], [prompt_words], [model_name], ...) of image `index` (0-based)."""
    prompt = request.prompt if prompt is None else prompt
    negative = request.negative_prompt if negative_prompt is None else negative_prompt
    seeds = list(all_seeds or [seed])
    per_batch = max(1, request.batch_size)
    single = request.batch_size <= 1 and request.n_iter <= 1
    return {
        "seed": seed,
        "seed_first": seeds[0],
        "seed_last": SKIP_WITH_PREVIOUS if len(seeds) <= 1 else seeds[-1],
        "prompt": prompt,
        "negative_prompt": negative,
        "prompt_hash": _hash8(prompt),
        "negative_prompt_hash": _hash8(negative),
        "full_prompt_hash": _hash8(f"{prompt} {negative}"),
        "steps": request.steps,
        "cfg": request.cfg_scale,
        "sampler": request.sampler_name,
        "sampler_name": request.sampler_name,
        "scheduler": request.scheduler,
        # The saved image's size (hires fix makes it larger than the request's).
        "width": request.width if width is None else width,
        "height": request.height if height is None else height,
        "styles": ", ".join(s for s in request.styles if s != "None") or "None",
        "model_name": model_name,
        "model_hash": model_hash,
        "job_timestamp": job_timestamp,
        "batch_number": SKIP_WITH_PREVIOUS if request.batch_size <= 1 else index % per_batch + 1,
        "batch_size": request.batch_size,
        "generation_number": SKIP_WITH_PREVIOUS if single else index + 1,
        "clip_skip": request.clip_skip,
        # Only img2img (or hires fix) has a denoising strength worth a name.
        "denoising": (request.denoising_strength if request.mode == "img2img" or request.enable_hr
                      else SKIP_WITH_PREVIOUS),
        "vae_filename": os.path.basename(request.sd_vae) if request.sd_vae else "NoneType",
    }


def infotext_tokens(infotext: str) -> dict[str, Any]:
    """Pattern tokens recovered from an image's infotext (seed, prompt, steps, ...), for saving an image whose
    request is gone (the UI's Save button names files as the generation did: `00003-1234.png`)."""
    from modules.images.infotext import parse_infotext

    if not infotext or not infotext.strip():
        return {}
    parsed = parse_infotext(infotext)
    fields = {"seed": "Seed", "prompt": "Prompt", "negative_prompt": "Negative prompt", "steps": "Steps",
              "cfg": "CFG scale", "sampler": "Sampler", "sampler_name": "Sampler", "scheduler": "Schedule type",
              "width": "Size-1", "height": "Size-2", "model_name": "Model", "model_hash": "Model hash",
              "clip_skip": "Clip skip", "denoising": "Denoising strength"}
    tokens = {key: parsed[name] for key, name in fields.items() if parsed.get(name) not in (None, "")}
    for key in ("prompt", "negative_prompt"):
        value = str(parsed.get(key.replace("_", " ").capitalize()) or "")
        tokens.update({f"{key}_hash": _hash8(value)})
    tokens["full_prompt_hash"] = _hash8(f"{parsed.get('Prompt', '')} {parsed.get('Negative prompt', '')}")
    return tokens


def _datetime(now: datetime, args: list[str]) -> str:
    """[datetime], [datetime<format>], [datetime<format><time zone>]; a bad format falls back to the default."""
    when = now
    if len(args) > 1 and args[1]:
        try:
            from zoneinfo import ZoneInfo

            when = now.astimezone(ZoneInfo(args[1]))
        except (KeyError, ValueError, OSError, ImportError):
            pass  # an unknown zone: local time, as A1111
    fmt = args[0] if args and args[0] else DEFAULT_DATETIME
    try:
        return when.strftime(fmt)
    except (ValueError, TypeError):
        return when.strftime(DEFAULT_DATETIME)


def _hasprompt(prompt: str, args: list[str]) -> str:
    """[hasprompt<word|default>...]: each word found in the prompt, else its default (if any)."""
    lowered = prompt.lower()
    out = []
    for arg in args:
        word, _, default = arg.partition("|")
        if word.lower() in lowered:
            out.append(word.lower())
        elif default:
            out.append(default)
    return "".join(out)


def expand_pattern(pattern: str, tokens: Mapping[str, Any], *, now: datetime | None = None,
                   prompt_words: int = 8, max_bytes: int = 200, image_bytes: bytes | None = None) -> str:
    """`[seed]-[prompt_words]` -> `1234-a cat on a mat`; unknown tokens stay as written so typos show."""
    now = now or datetime.now()
    values: dict[str, Any] = {"date": now.strftime("%Y-%m-%d"), **{k.lower(): v for k, v in tokens.items()}}
    prompt = str(values.get("prompt") or "")
    words = [w for w in _WORD_SPLIT.split(prompt) if w][:max(1, prompt_words)]
    values["prompt_words"] = " ".join(words) or "empty"
    values["prompt_spaces"] = prompt[:_PART_CHARS]
    values["prompt"] = prompt.replace(" ", "_")[:_PART_CHARS]  # A1111's [prompt] has no spaces
    values.setdefault("prompt_no_styles", prompt[:_PART_CHARS])
    values["none"] = ""  # [none]: just the number

    out: list[str] = []
    last = 0
    for match in _TOKEN.finditer(pattern):
        out.append(pattern[last:match.start()])
        last = match.end()
        key, args = match.group(1).lower(), _ARG.findall(match.group(2))
        if key == "datetime":
            value: Any = _datetime(now, args)
        elif key == "hasprompt":
            value = _hasprompt(prompt, args)
        elif key == "image_hash" and image_bytes is not None:
            length = int(args[0]) if args and args[0].isdigit() else 8
            value = hashlib.sha256(image_bytes).hexdigest()[:length]
        elif key in values or key in KNOWN_TOKENS:
            value = values.get(key)
        else:
            out.append(f"[{match.group(1)}]")  # as A1111: the name stays, its arguments go
            continue
        if value is SKIP_WITH_PREVIOUS:
            out.pop()
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        # Sanitised one by one, so a prompt cannot add folders or hide the other tokens.
        out.append("" if value is None else sanitize_name(str(value), max_bytes))
    out.append(pattern[last:])
    return sanitize_name("".join(out), max_bytes)


def expand_directory(pattern: str, tokens: Mapping[str, Any], **kwargs: Any) -> str:
    """A directory pattern may nest folders with '/' ("[date]/[model_name]"); '..' and empty parts are dropped."""
    parts = (expand_pattern(part, tokens, **kwargs) for part in re.split(r"[\\/]+", pattern))
    return "/".join(p for p in parts if p and p.strip(".") != "")


def next_number(folder: Any, basename: str = "") -> int:
    """The next free counter in `folder`: one past the highest `NNNNN-...` (or `basename-NNNN-...`) there."""
    prefix = f"{basename}-" if basename else ""
    highest = -1
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 0
    for name in names:
        if name.startswith(prefix) and (m := _NUMBER.match(name[len(prefix):])):
            highest = max(highest, int(m.group(1)))
    return highest + 1
