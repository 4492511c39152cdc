"""First start with no checkpoint: fetch SD1.5 from the Hugging Face hub, as A1111 does, or give up politely.

Offline (HF_HUB_OFFLINE, no route, DNS failure, timeout) this returns None after one log line and no
traceback; the caller then falls back to the demo checkpoint.
"""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)

DEFAULT_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
DEFAULT_FILENAME = "v1-5-pruned-emaonly.safetensors"


def download_default_model(ckpt_dir: Path | str, timeout_s: float = 10) -> Path | None:
    """Download SD1.5 (~4 GB) into ckpt_dir; None when offline. timeout_s bounds the first request."""
    ckpt_dir = Path(ckpt_dir)
    target = ckpt_dir / DEFAULT_FILENAME
    if target.is_file():
        return target
    from huggingface_hub import constants, hf_hub_download

    if constants.HF_HUB_OFFLINE:
        log.warning("No checkpoint found and HF_HUB_OFFLINE is set: not downloading %s; "
                    "put a model in %s", DEFAULT_FILENAME, ckpt_dir)
        return None
    # one bounded probe first: the hub client retries unreachable hosts with backoff for ~20 s
    behind_proxy = any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"))
    unreachable = None if behind_proxy else _unreachable(constants.ENDPOINT, timeout_s)
    if unreachable:
        log.warning("No checkpoint found and the model hub is unreachable (%s): not downloading %s; "
                    "put a model in %s", unreachable, DEFAULT_FILENAME, ckpt_dir)
        return None
    log.info("No checkpoint found: downloading %s from %s into %s", DEFAULT_FILENAME, DEFAULT_REPO, ckpt_dir)
    try:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        # local_dir: the file lands as a plain file in models/Stable-diffusion, as users expect
        path = hf_hub_download(DEFAULT_REPO, DEFAULT_FILENAME, local_dir=ckpt_dir, etag_timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 - any network/hub failure means "offline" here; one line, no traceback
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        log.warning("Could not download the default model %s/%s (%s: %s); put a model in %s",
                    DEFAULT_REPO, DEFAULT_FILENAME, type(exc).__name__, reason, ckpt_dir)
        return None
    return Path(path)


def _unreachable(endpoint: str, timeout_s: float) -> str | None:
    """Why a TCP connection to the hub endpoint fails within timeout_s seconds, or None when it works."""
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc or type(exc).__name__}"
