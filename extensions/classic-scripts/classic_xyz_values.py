"""X/Y/Z plot axis values as A1111 users write them. Pure Python, no A1111 names (this module is shared
by every app in the process, so it must hold no app's state).

- a comma-separated list with CSV quoting: `a, "b, c", d` -> ["a", "b, c", "d"] (lines are joined);
- whole-number ranges, both ends included: `1-5` -> 1..5, `1-5 (+2)` -> 1, 3, 5, `10-1 (-3)` -> 10, 7, 4, 1;
- counts: `1-10 [5]` -> five evenly spaced values from 1 to 10 (whole numbers are truncated: 1, 3, 5, 7, 10);
- float ranges and counts alike: `0.5-1.5 (+0.25)`, `0-1 [5]`.
"""
from __future__ import annotations

import csv
import io
import itertools
import re

_INT = r"[+-]?\s*\d+"
_FLOAT = r"[+-]?\s*(?:\d+(?:\.\d*)?|\.\d+)"


def _ranges(number: str) -> tuple[re.Pattern, re.Pattern]:
    step = re.compile(rf"\s*({number})\s*-\s*({number})\s*(?:\(\s*({number})\s*\))?\s*")
    count = re.compile(rf"\s*({number})\s*-\s*({number})\s*\[\s*(\d+)\s*\]\s*")
    return step, count


INT_STEP, INT_COUNT = _ranges(_INT)
FLOAT_STEP, FLOAT_COUNT = _ranges(_FLOAT)


def split_values(text: str) -> list[str]:
    """The comma list (CSV quoting, any number of lines), each value stripped; empty values are kept
    (`cat,` means "cat" and "" for Prompt S/R)."""
    if not text or not text.strip():
        return []
    rows = csv.reader(io.StringIO(text.strip()), skipinitialspace=True)
    return [value.strip() for value in itertools.chain.from_iterable(rows)]


def to_csv(values) -> str:
    """The inverse of split_values: one CSV line, quoting values that hold commas or quotes."""
    out = io.StringIO()
    csv.writer(out).writerow([str(v) for v in values])
    return out.getvalue().strip()


def _number(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _linspace(start: float, stop: float, num: int) -> list[float]:
    if num <= 1:
        return [start] if num == 1 else []
    return [start + (stop - start) * i / (num - 1) for i in range(num)]


def expand_ints(values: list[str]) -> list[int]:
    """Whole numbers and whole-number ranges; empty values are skipped. ValueError names a bad value."""
    out: list[int] = []
    for value in values:
        if not value.strip():
            continue
        step_match, count_match = INT_STEP.fullmatch(value), INT_COUNT.fullmatch(value)
        if step_match:
            start, end = int(_number(step_match[1])), int(_number(step_match[2]))
            step = int(_number(step_match[3])) if step_match[3] else (1 if end >= start else -1)
            if step == 0:
                raise ValueError(f"{value!r}: a range step cannot be 0")
            out += list(range(start, end + (1 if step > 0 else -1), step))
        elif count_match:
            start, end = int(_number(count_match[1])), int(_number(count_match[2]))
            out += [int(x) for x in _linspace(start, end, int(count_match[3]))]
        else:
            try:
                out.append(int(_number(value)))
            except ValueError:
                raise ValueError(f"{value!r} is not a whole number") from None
    return out


def expand_floats(values: list[str]) -> list[float]:
    """Numbers and number ranges (end included when the steps reach it); empty values are skipped."""
    out: list[float] = []
    for value in values:
        if not value.strip():
            continue
        step_match, count_match = FLOAT_STEP.fullmatch(value), FLOAT_COUNT.fullmatch(value)
        if step_match:
            start, end = float(_number(step_match[1])), float(_number(step_match[2]))
            step = float(_number(step_match[3])) if step_match[3] else (1.0 if end >= start else -1.0)
            if step == 0:
                raise ValueError(f"{value!r}: a range step cannot be 0")
            # start + i * step (no running sum), rounded: 0.1 steps give 0.3, not 0.30000000000000004
            count = int((end - start) / step + 1e-9) + 1 if (end - start) * step >= 0 else 0
            out += [round(start + i * step, 10) for i in range(count)]
        elif count_match:
            start, end = float(_number(count_match[1])), float(_number(count_match[2]))
            out += [round(x, 10) for x in _linspace(start, end, int(count_match[3]))]
        else:
            try:
                out.append(float(_number(value)))
            except ValueError:
                raise ValueError(f"{value!r} is not a number") from None
    return out


def permutations(values: list[str]) -> list[tuple[str, ...]]:
    """Every order of the values (Prompt order)."""
    return list(itertools.permutations(values))
