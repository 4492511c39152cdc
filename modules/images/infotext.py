"""A1111 infotext (the `parameters` text stored with each image): written and parsed side by side.

Layout: prompt line(s), an optional `Negative prompt: ...` block, then one line of `Key: value` pairs.
Text written here is readable by A1111, and text A1111 writes parses here the way A1111 parses it.

Parsing takes time linear in the text: infotext comes from clients (the API's `infotext` field, a PNG's
`parameters` chunk), and A1111's backtracking regexes take hours on a megabyte of the wrong characters. The
scanners below give exactly what those regexes give (a test compares them on random text).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from modules.prompts.parser import (
    EXACT_PRODUCTS,
    ROUND_MULTIPLIER,
    SQUARE_MULTIPLIER,
    attention_runs,
    run_weights,
)
from modules.types import INPAINTING_FILL, GenerationRequest

# No "v1.2.3" in it on purpose: A1111 would read that as its own version and switch on compatibility flags.
VERSION = "sd-webui-diffusers 0.1.0"
NEGATIVE_PREFIX = "Negative prompt:"

# The params line's grammar, as A1111 reads it: `\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)` found
# repeatedly. A key starts with a word character and holds word characters, spaces, '-' and '/'; a value is a
# JSON-quoted string followed by ',' or the end, else it runs to the next comma. `param_pairs` finds the same
# pairs with these pieces, each of which never looks at a character twice.
_KEY_TAIL = re.compile(r"[\w \-/]{2}:")  # the last two key characters and the colon
_KEY_CHARS = re.compile(r"[\w \-/]*")  # matched on the reversed line: the key characters before a colon
_WORD_CHAR = re.compile(r"\w")
_SPACES = re.compile(r"\s*")
_QUOTED_BODY = re.compile(r'(?:\\.|[^\\"])*')  # escape pairs and other characters, up to a bare quote
_SIZE = re.compile(r"^(\d+)x(\d+)$")
_VERSION = re.compile(r"v(\d+)\.(\d+)\.(\d+)(?:-RC)?(?:-(\d+))?")
# A1111 releases whose behaviour changed; infotexts older than these get flags that restore the old behaviour.
_V160, _V170_TSNR, _V180 = (1, 6, 0, 0), (1, 7, 0, 225), (1, 8, 0, 0)

# Keys A1111's parser fills in when a text lacks them: how versions that did not write them behaved.
_PARSE_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("Hires sampler", "Use same sampler"),
    ("Hires schedule type", "Use same scheduler"),
    ("Hires checkpoint", "Use same checkpoint"),
    ("Hires prompt", ""),
    ("Hires negative prompt", ""),
    ("Mask mode", "Inpaint masked"),
    ("Masked content", "original"),
    ("Inpaint area", "Whole picture"),
    ("Masked area padding", 32),
)
_LATE_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("RNG", "GPU"),
    ("Schedule type", "Automatic"),
    ("Schedule max sigma", 0),
    ("Schedule min sigma", 0),
    ("Schedule rho", 0),
    ("VAE Encoder", "Full"),
    ("VAE Decoder", "Full"),
    ("FP8 weight", "Disable"),
)

# Without an opening bracket every weight is 1 (no need to parse the attention syntax at all).
_ATTENTION_SYNTAX = re.compile(r"[(\[]")

# ---- writing ----------


def format_value(value: Any) -> str:
    """One value as written: whole floats without '.0' (A1111 shows 'CFG scale: 7'), bools as True/False."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


def quote(text: str) -> str:
    """JSON-quote a value the params line could not hold as is (',', ':', '"', line breaks, edge spaces)."""
    if any(c in text for c in ',:"\n\r') or text != text.strip():
        return json.dumps(text, ensure_ascii=False)
    return text


def format_infotext(prompt: str, negative_prompt: str, params: Mapping[str, Any]) -> str:
    """The full infotext; params keep their order, None and empty values are left out."""
    rendered = ((k, format_value(v)) for k, v in params.items() if v is not None)
    line = ", ".join(f"{k}: {quote(v)}" for k, v in rendered if v != "")
    negative = f"\n{NEGATIVE_PREFIX} {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{line}".strip()


def build_generation_params(
    request: GenerationRequest,
    *,
    seed: int,
    subseed: int,
    model_name: str,
    model_hash: str,
    vae_name: str | None = None,
    vae_hash: str | None = None,
    schedule_type: str | None = None,
    extra: Mapping[str, Any] | None = None,
    version: str = VERSION,
) -> dict[str, Any]:
    """Params in A1111's key order, only those A1111 writes for this request; `extra` goes before Version.

    `schedule_type` is the resolved schedule label (Automatic already turned into the sampler's default);
    None takes `request.scheduler`, "" leaves the key out.
    """
    r = request
    img2img = r.mode == "img2img"
    hires = r.enable_hr and not img2img
    variation = r.subseed_strength > 0
    params: dict[str, Any] = {
        "Steps": r.steps,
        "Sampler": r.sampler_name,
        "Schedule type": r.scheduler if schedule_type is None else schedule_type,
        "CFG scale": r.cfg_scale,
        "Image CFG scale": r.image_cfg_scale if img2img else None,
        "Seed": seed,
        "Size": f"{r.width}x{r.height}",
        "Model hash": model_hash,
        "Model": model_name,
        "VAE hash": vae_hash,
        "VAE": vae_name,
        "Variation seed": subseed if variation else None,
        "Variation seed strength": r.subseed_strength if variation else None,
        "Seed resize from": (f"{r.seed_resize_from_w}x{r.seed_resize_from_h}"
                             if r.seed_resize_from_w > 0 and r.seed_resize_from_h > 0 else None),
        "Denoising strength": r.denoising_strength if img2img or hires else None,
        "Clip skip": r.clip_skip if r.clip_skip > 1 else None,
        "Tiling": True if r.tiling else None,
    }
    if hires:
        params.update(_hires_params(r))
    if r.refiner_checkpoint and r.refiner_checkpoint != "None":
        params.update({"Refiner": r.refiner_checkpoint, "Refiner switch at": r.refiner_switch_at})
    if img2img:
        params.update(_img2img_params(r))
    for key, value in (extra or {}).items():
        params[key] = value  # an existing key keeps its place, as A1111's dict merge does
    params.pop("Version", None)
    params["Version"] = version or None
    return {k: v for k, v in params.items() if v is not None and v != ""}


def _hires_params(r: GenerationRequest) -> dict[str, Any]:
    """Hires-fix keys: a scale or a target size, then steps, upscaler and what differs from pass one."""
    if r.hr_resize_x == 0 and r.hr_resize_y == 0:
        out: dict[str, Any] = {"Hires upscale": r.hr_scale}
    else:
        out = {"Hires resize": f"{r.hr_resize_x}x{r.hr_resize_y}"}
    out["Hires steps"] = r.hr_second_pass_steps if r.hr_second_pass_steps > 0 else None
    out["Hires upscaler"] = r.hr_upscaler or None
    if r.hr_sampler_name not in ("", "Use same sampler", r.sampler_name):
        out["Hires sampler"] = r.hr_sampler_name
    if r.hr_scheduler not in ("", "Use same scheduler", r.scheduler):
        out["Hires schedule type"] = r.hr_scheduler
    if r.hr_cfg_scale is not None and r.hr_cfg_scale != r.cfg_scale:
        out["Hires CFG Scale"] = r.hr_cfg_scale
    if r.hr_prompt and r.hr_prompt != r.prompt:
        out["Hires prompt"] = r.hr_prompt
    if r.hr_negative_prompt and r.hr_negative_prompt != r.negative_prompt:
        out["Hires negative prompt"] = r.hr_negative_prompt
    return out


def _img2img_params(r: GenerationRequest) -> dict[str, Any]:
    """Inpainting keys (only with a mask) and the noise multiplier when it is not 1."""
    out: dict[str, Any] = {}
    if r.mask is not None:
        blur_x = r.mask_blur if r.mask_blur_x is None else r.mask_blur_x
        blur_y = r.mask_blur if r.mask_blur_y is None else r.mask_blur_y
        out["Mask blur"] = r.mask_blur if blur_x > 0 or blur_y > 0 else None
        if r.inpaint_full_res:
            out["Inpaint area"] = "Only masked"
            out["Masked area padding"] = r.inpaint_full_res_padding
        if 0 <= r.inpainting_fill < len(INPAINTING_FILL):
            out["Masked content"] = INPAINTING_FILL[r.inpainting_fill]
        if r.inpainting_mask_invert:
            out["Mask mode"] = "Inpaint not masked"
    if r.initial_noise_multiplier is not None and r.initial_noise_multiplier != 1.0:
        out["Noise multiplier"] = r.initial_noise_multiplier
    return out


# ---- parsing ----------


def parse_infotext(text: str | None, skip_fields: Iterable[str] = ()) -> dict[str, Any]:
    """Parse an infotext the way A1111 does: values stay strings, `WxH` values split into `Key-1`/`Key-2`,
    and keys the text lacks get the defaults A1111 injects (see the shared infotext cases). None (an image
    without a `parameters` chunk) and "" give those defaults alone, as A1111's PNG Info does."""
    *lines, last = (text or "").strip().split("\n")
    # The params line is the last line, but only when it looks like one: a prompt may hold a colon or two.
    pairs = param_pairs(last)
    if len(pairs) < 3:
        lines.append(last)
        pairs = []

    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for raw in lines:
        line = raw.strip()
        if line.startswith(NEGATIVE_PREFIX):
            in_negative = True
            line = line[len(NEGATIVE_PREFIX):].strip()
        target = negative_lines if in_negative else prompt_lines
        # Joining only once something is there drops leading blank lines, as A1111 does.
        if line or target:
            target.append(line)
    prompt, negative = "\n".join(prompt_lines), "\n".join(negative_lines)

    res: dict[str, Any] = {}
    for key, value in pairs:
        if not value:
            continue  # A1111 skips empty values
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except ValueError:
                pass  # not valid JSON: keep the text as written
        size = _SIZE.match(value)
        if size:
            res[f"{key}-1"], res[f"{key}-2"] = size.group(1), size.group(2)
        else:
            res[key] = value

    res["Prompt"] = prompt
    res["Negative prompt"] = negative
    res.setdefault("Clip skip", "1")
    if "Hypernet" in res:
        # Hypernetworks moved from infotext fields into the prompt; A1111 converts old texts the same way.
        res["Prompt"] += f"<hypernet:{res['Hypernet']}:{res.get('Hypernet strength', '1.0')}>"
    if "Hires resize-1" not in res:
        res["Hires resize-1"] = res["Hires resize-2"] = 0
    for key, default in _PARSE_DEFAULTS:
        res.setdefault(key, default)
    _restore_first_pass_size(res)
    for key, default in _LATE_DEFAULTS:
        res.setdefault(key, default)
    if res["FP8 weight"] != "Disable":
        res.setdefault("Cache FP16 weight for LoRA", False)
    if "Emphasis" not in res and (uses_emphasis(prompt) or uses_emphasis(negative)):
        res["Emphasis"] = "Original"
    res.setdefault("Refiner switch by sampling steps", False)
    _version_backcompat(res)
    for key in skip_fields:
        res.pop(key, None)
    return res


def uses_emphasis(prompt: str) -> bool:
    """True when A1111's attention syntax gives any part of `prompt` a weight other than 1.

    As A1111: each bracket multiplies the text runs inside it when it closes (unclosed ones at the end,
    round before square), runs of equal weight merge, and a run that is exactly "BREAK" does not count.
    """
    if _ATTENTION_SYNTAX.search(prompt) is None:
        return False
    runs, products = attention_runs(prompt)
    if not any(start < stop for start, stop, _ in products):
        return False
    if sum([stop - start for start, stop, _ in products]) > EXACT_PRODUCTS:
        return _uses_emphasis_counted(runs, products)
    return _any_weighted_run(runs, run_weights(runs, products))


def _any_weighted_run(runs: list[str | None], weights: list[float]) -> bool:
    """A1111's test after merging equal-weight runs: some merged run is not "BREAK" and not at weight 1."""
    run_weight: float | None = None
    run_text = ""  # the merged text while it could still be "BREAK" (5 characters), else a stand-in
    for run, weight in zip(runs, weights):
        text = "BREAK" if run is None else run
        if run_weight is not None and weight == run_weight:
            run_text = run_text + text if len(run_text) + len(text) <= 5 else "(long)"
            continue
        if run_weight is not None and run_weight != 1.0 and run_text != "BREAK":
            return True
        run_weight, run_text = weight, (text if len(text) <= 5 else "(long)")
    return run_weight is not None and run_weight != 1.0 and run_text != "BREAK"


def _uses_emphasis_counted(runs: list[str | None], products: list[tuple[int, int, float]]) -> bool:
    """Linear stand-in for brackets nested thousands deep: a run is weighted when its x1.1 and /1.1
    brackets do not cancel out or an explicit weight other than 1 covers it."""
    net = [0] * (len(runs) + 1)
    explicit = [0] * (len(runs) + 1)
    for start, stop, factor in products:
        if factor == ROUND_MULTIPLIER or factor == SQUARE_MULTIPLIER:
            step = 1 if factor == ROUND_MULTIPLIER else -1
            net[start] += step
            net[stop] -= step
        elif factor != 1.0:
            explicit[start] += 1
            explicit[stop] -= 1
    level = count = 0
    for i, run in enumerate(runs):
        level += net[i]
        count += explicit[i]
        if run is not None and (level or count):
            return True
    return False


def _value_ends(line: str, pos: int) -> bool:
    """`(?:,|$)` at `pos`: a comma, the end of the line, or a newline that is its last character."""
    return pos == len(line) or line[pos] == "," or (pos == len(line) - 1 and line[pos] == "\n")


def param_pairs(line: str) -> list[tuple[str, str]]:
    """(key, raw value) pairs of a params line, as A1111's regex finds them; time linear in the line."""
    pairs: list[tuple[str, str]] = []
    size = len(line)
    reversed_line = line[::-1]
    pos = 0
    scanned = (-1, -1)  # (start, stop) of the last quoted-value scan
    while True:
        # 1. The next colon with two key characters before it, and the key: from the first word character
        #    of the key-character run before that colon (a key never starts before `pos`).
        tail = _KEY_TAIL.search(line, pos)
        if tail is None:
            return pairs
        colon = tail.end() - 1
        run = _KEY_CHARS.match(reversed_line, size - colon, size - pos)
        first = _WORD_CHAR.search(line, colon - (run.end() - run.start()), colon - 1)
        if first is None:
            pos = colon + 1  # e.g. "--:": no key ends at this colon
            continue
        key = line[first.start():colon]
        # 2. The value: a quoted string that ends at ',' or the end of the line, else up to the next comma.
        start = _SPACES.match(line, colon + 1).end()
        stop = -1
        if start < size and line[start] == '"':
            body = start + 1
            # A scan that starts inside the previous one (after an escaped quote) stops where it stopped.
            if not scanned[0] <= body <= scanned[1]:
                scanned = (body, _QUOTED_BODY.match(line, body).end())
            stop = scanned[1]
            after = stop + 1
            closed = stop > body and stop < size and line[stop] == '"'
            if closed and _value_ends(line, after):
                pairs.append((key, line[start:after]))
                pos = after + 1 if after < size and line[after] == "," else after
                continue
        comma = line.find(",", start)
        end = size if comma < 0 else comma
        pairs.append((key, line[start:end]))
        pos = size if comma < 0 else comma + 1


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _restore_first_pass_size(res: dict[str, Any]) -> None:
    """Old hires fix wrote `First pass size`; today's fields are the first-pass Size and a Hires resize."""
    first_w, first_h = res.get("First pass size-1"), res.get("First pass size-2")
    if first_w is None or first_h is None:
        return
    try:
        first_w, first_h = int(first_w), int(first_h)
        width, height = int(res.get("Size-1", 512)), int(res.get("Size-2", 512))
    except ValueError:
        return
    if first_w == 0 or first_h == 0:
        # 0x0 meant "pick it for me": about 512x512 pixels worth, in multiples of 64.
        scale = math.sqrt(512 * 512 / (width * height))
        first_w, first_h = math.ceil(scale * width / 64) * 64, math.ceil(scale * height / 64) * 64
    res["Size-1"], res["Size-2"] = first_w, first_h
    res["Hires resize-1"], res["Hires resize-2"] = width, height


def _version_backcompat(res: dict[str, Any]) -> None:
    """Texts from older A1111 versions get the flags that reproduce how those versions behaved."""
    match = _VERSION.search(str(res.get("Version", "")))
    if match is None:
        return
    ver = tuple(int(g or 0) for g in match.groups())
    if ver < _V160 and "[" in res.get("Prompt", ""):
        res["Old prompt editing timelines"] = True
    if ver < _V160 and res.get("Sampler", "") in ("DDIM", "PLMS"):
        res["Pad conds v0"] = True
    if ver < _V170_TSNR:
        res["Downcast alphas_cumprod"] = True
    if ver < _V180 and res.get("Refiner"):
        res["Refiner switch by sampling steps"] = True


# ---- parsed infotext -> request fields ----------

# Infotext key -> (GenerationRequest field, converter). Values that do not convert are skipped: a pasted text
# with one broken value should still fill in the rest.
_FIELDS: tuple[tuple[str, str, Any], ...] = (
    ("Prompt", "prompt", str),
    ("Negative prompt", "negative_prompt", str),
    ("Steps", "steps", int),
    ("CFG scale", "cfg_scale", float),
    ("Image CFG scale", "image_cfg_scale", float),
    ("Seed", "seed", int),
    ("Variation seed", "subseed", int),
    ("Variation seed strength", "subseed_strength", float),
    ("Seed resize from-1", "seed_resize_from_w", int),
    ("Seed resize from-2", "seed_resize_from_h", int),
    ("Size-1", "width", int),
    ("Size-2", "height", int),
    ("Denoising strength", "denoising_strength", float),
    ("Clip skip", "clip_skip", int),
    ("Tiling", "tiling", lambda v: _to_bool(v)),  # late-bound: defined below
    ("Hires upscale", "hr_scale", float),
    ("Hires resize-1", "hr_resize_x", int),
    ("Hires resize-2", "hr_resize_y", int),
    ("Hires steps", "hr_second_pass_steps", int),
    ("Hires upscaler", "hr_upscaler", str),
    ("Hires sampler", "hr_sampler_name", str),
    ("Hires schedule type", "hr_scheduler", str),
    ("Hires CFG Scale", "hr_cfg_scale", float),
    ("Hires prompt", "hr_prompt", str),
    ("Hires negative prompt", "hr_negative_prompt", str),
    ("Refiner", "refiner_checkpoint", str),
    ("Refiner switch at", "refiner_switch_at", float),
    ("Mask blur", "mask_blur", int),
    ("Inpaint area", "inpaint_full_res", lambda v: v == "Only masked"),
    ("Masked area padding", "inpaint_full_res_padding", int),
    ("Masked content", "inpainting_fill", INPAINTING_FILL.index),
    ("Mask mode", "inpainting_mask_invert", lambda v: int(v == "Inpaint not masked")),
    ("Noise multiplier", "initial_noise_multiplier", float),
    ("VAE", "sd_vae", str),
)
# Infotext key -> A1111 setting name, for values that are settings rather than request fields.
_SETTINGS: tuple[tuple[str, str], ...] = (
    ("Emphasis", "emphasis"),
    ("RNG", "randn_source"),
    ("ENSD", "eta_noise_seed_delta"),
    # A1111 pastes sampler parameters as settings (each sampler reads its own eta setting).
    ("Eta", "eta_ancestral"),
    ("Eta DDIM", "eta_ddim"),
    ("Sigma churn", "s_churn"),
    ("Sigma tmin", "s_tmin"),
    ("Sigma tmax", "s_tmax"),
    ("Sigma noise", "s_noise"),
    ("Extra noise", "img2img_extra_noise"),
    ("Schedule max sigma", "sigma_max"),
    ("Schedule min sigma", "sigma_min"),
    ("Schedule rho", "rho"),
    ("NGMS", "s_min_uncond"),
    ("NGMS all steps", "s_min_uncond_all"),
    ("Skip Early CFG", "skip_early_cond"),
    ("VAE Encoder", "sd_vae_encode_method"),
    ("VAE Decoder", "sd_vae_decode_method"),
    ("FP8 weight", "fp8_storage"),
    ("Pad conds", "pad_cond_uncond"),
    ("Old prompt editing timelines", "use_old_scheduling"),
    ("Downcast alphas_cumprod", "use_downcasted_alpha_bar"),
    ("Token merging ratio", "token_merging_ratio"),
    ("Token merging ratio hr", "token_merging_ratio_hr"),
)
# What the UI's "Override settings" box takes from a pasted infotext: the settings above plus the two that the
# API carries as request fields (clip skip, the VAE file), as A1111's paste does.
PASTE_SETTINGS: tuple[tuple[str, str], ...] = (("Clip skip", "CLIP_stop_at_last_layers"), *_SETTINGS,
                                               ("VAE", "sd_vae"))
# Before A1111 1.9 the schedule was part of the sampler name ("DPM++ 2M Karras").
_LEGACY_SCHEDULE_SUFFIXES = ("Karras", "Exponential")


def infotext_to_request_fields(parsed: Mapping[str, Any]) -> dict[str, Any]:
    """GenerationRequest field values from `parse_infotext` output (typed), plus `override_settings`."""
    out: dict[str, Any] = {}
    for key, name, convert in _FIELDS:
        if key in parsed:
            try:
                out[name] = convert(parsed[key])
            except (TypeError, ValueError):
                continue
    if "Sampler" in parsed:
        out["sampler_name"], out["scheduler"] = split_sampler_name(
            str(parsed["Sampler"]), str(parsed.get("Schedule type", "Automatic")))
    # A1111 turns hires fix on for a pasted text with a denoising strength and any hires key.
    hires_size = out.get("hr_resize_x", 0) or out.get("hr_resize_y", 0)
    out["enable_hr"] = "Denoising strength" in parsed and bool(
        "Hires upscale" in parsed or "Hires upscaler" in parsed or hires_size)
    model = parsed.get("Model hash") or parsed.get("Model")
    if model:
        out["sd_model_checkpoint"] = str(model)
    settings = {setting: setting_value(parsed[key]) for key, setting in _SETTINGS if key in parsed}
    if settings:
        out["override_settings"] = settings
    return out


def split_sampler_name(sampler: str, schedule: str = "Automatic") -> tuple[str, str]:
    """('DPM++ 2M Karras', 'Automatic') -> ('DPM++ 2M', 'Karras'); an explicit schedule type wins."""
    for suffix in _LEGACY_SCHEDULE_SUFFIXES:
        if sampler.endswith(" " + suffix):
            base = sampler[: -len(suffix) - 1]
            return base, suffix if schedule in ("", "Automatic") else schedule
    return sampler, schedule or "Automatic"


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(value)
        return value.lower() in ("true", "1")
    return bool(value)


def setting_value(value: Any) -> Any:
    """Setting values are typed in the store; infotext holds them as text."""
    if not isinstance(value, str):
        return value
    if value in ("True", "False"):
        return value == "True"
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value
