"""Token merging (ToMe, `tomesd`, MIT) for one pass: A1111's token_merging_ratio settings and infotext.

ToMe merges similar tokens before self-attention and copies the result back after it, so attention runs on
fewer tokens; the image changes a little (more at higher ratios), which is why the ratio goes into the
infotext. A1111 merges only at the highest resolution (tomesd's max_downsample=1), where SD 1.x has its
first attention blocks; SDXL's first level has none, so we merge at the highest level that has attention
(2x down on SDXL) instead of merging nothing there.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


def merge_downsample(unet: Any) -> int:
    """The downsample factor (1, 2, 4, ...) of the UNet's highest-resolution level that has attention."""
    for level, block in enumerate(getattr(unet, "down_blocks", ())):
        if getattr(block, "attentions", None):
            return 2**level
    return 1


def pass_ratio(setting, kind: str) -> float:
    """The ratio (0-0.9) for a pass of `kind` "txt2img", "hires" or an img2img mode ("img2img", "inpaint"):
    token_merging_ratio, or the pass's own setting when that is not 0 (A1111's rule)."""
    ratio = float(setting("token_merging_ratio"))
    own = {"hires": "token_merging_ratio_hr", "txt2img": None}.get(kind, "token_merging_ratio_img2img")
    if own is not None and float(setting(own)) > 0:
        ratio = float(setting(own))
    return min(max(ratio, 0.0), 0.9)


def infotext(first_ratio: float, hires_ratio: float | None = None) -> dict[str, float]:
    """Infotext keys: "Token merging ratio" when used, "... hr" when the hires pass used another ratio."""
    out: dict[str, float] = {}
    if first_ratio > 0:
        out["Token merging ratio"] = first_ratio
    if hires_ratio is not None and hires_ratio > 0 and hires_ratio != first_ratio:
        out["Token merging ratio hr"] = hires_ratio
    return out


@contextlib.contextmanager
def token_merging(pipe: Any, ratio: float) -> Iterator[None]:
    """ToMe on `pipe`'s UNet for the duration of one call; ratio 0 leaves the pipeline untouched."""
    unet = getattr(pipe, "unet", None)
    if ratio <= 0 or unet is None:
        yield
        return
    import tomesd

    # use_rand=False as A1111: the same seed gives the same image (the random partition would not).
    tomesd.apply_patch(unet, ratio=ratio, max_downsample=merge_downsample(unet), sx=2, sy=2, use_rand=False)
    try:
        yield
    finally:
        tomesd.remove_patch(unet)
