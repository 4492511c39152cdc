"""Atomic file writes: a crash or a full disk never leaves a half-written settings, cache or styles file."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path | str, text: str) -> None:
    """Write text to a temp file beside `path` (same file system), fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # newline="": the text is written exactly as given (CSV writers choose their own line ends)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path | str, data: Any) -> None:
    """`data` as indented UTF-8 JSON, written atomically."""
    write_text_atomic(path, json.dumps(data, indent=4, ensure_ascii=False))
