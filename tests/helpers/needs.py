"""One rule for a test whose tool or library is absent: skip on a bare machine, fail under tests/run.sh.

`tests/run.sh` installs everything the README promises (Debian Chromium, the Real-ESRGAN libraries) and
exports WEBUI_TESTS_STRICT=1, so there a missing piece is a broken setup and must not pass as a skip.
Only optional hardware (a CUDA card) may still skip there: use `pytest.skip` directly for that.
"""
from __future__ import annotations

import os
from typing import NoReturn

import pytest

STRICT_ENV = "WEBUI_TESTS_STRICT"


def strict() -> bool:
    """True when the suite runs under tests/run.sh (everything it installs must be present)."""
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def missing(what: str) -> NoReturn:
    """Skip the test because `what` is absent, or fail it when strict (tests/run.sh promised it)."""
    if strict():
        pytest.fail(f"{what} ({STRICT_ENV}=1: tests/run.sh installs it, so its absence is a failure)",
                    pytrace=False)
    pytest.skip(what)
