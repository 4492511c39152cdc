"""The A1111 prompt language, parsed in pure Python (no torch): attention weights, prompt editing and
alternation schedules, `AND` sub-prompts, `#` comments.

Function names and return shapes are A1111's, so code ported from A1111 finds them. Nothing here raises
on user text: a prompt that cannot be parsed is used verbatim, as A1111 does.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from itertools import accumulate

# ---------------------------------------------------------------------------------------------------
# Attention: (x) x1.1, [x] /1.1, (x:1.3), escapes, BREAK
# ---------------------------------------------------------------------------------------------------

# One token per match: escapes first, then brackets, then an explicit ":weight)" closer, then text.
_ATTENTION_TOKEN = re.compile(
    r"\\[()\[\]\\]|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|\]|[^\\()\[\]:]+|:"
)
# The same tokens as strings (findall), a run of opening brackets as one: they all open at the same place.
_ATTENTION_PIECE = re.compile(r"\\[()\[\]\\]|\\|[(\[]+|:\s*[+-]?[.\d]+\s*\)|\)|\]|[^\\()\[\]:]+|:")
# BREAK only as a whole word; the spaces around it belong to the separator (see split_break).
_BREAK_WORD = re.compile(r"\bBREAK\b")
ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1
# Bracket x run products done one by one in A1111's order (so weights are bit-identical), up to this many.
# Beyond, brackets are nested thousands deep and A1111 itself takes minutes: the factors are counted instead.
EXACT_PRODUCTS = 1_000_000

Products = list[tuple[int, int, float]]  # (first run, end run, factor), in the order A1111 applies them


def parse_prompt_attention(text: str) -> list[list]:
    """Split text into [text, weight] runs; ["BREAK", -1] marks a chunk break. Never raises.

    Time linear in the text (A1111's version rescans long runs and re-multiplies nested ranges).
    """
    runs, products = attention_runs(text)
    if not runs:
        return [["", 1.0]]
    weights = run_weights(runs, products)
    # Runs of equal weight merge (their texts joined once, not copied at every step).
    merged: list[list] = []
    parts: list[str] = []
    for run, weight in zip(runs, weights):
        if merged and weight == merged[-1][1]:
            parts.append("BREAK" if run is None else run)
            continue
        if merged:
            merged[-1][0] = "".join(parts)
        merged.append(["BREAK" if run is None else run, weight])
        parts = [merged[-1][0]]
    merged[-1][0] = "".join(parts)
    return merged


def attention_runs(text: str) -> tuple[list[str | None], Products]:
    """The text runs of A1111's attention syntax (None marks a BREAK) and the bracket products over them."""
    runs: list[str | None] = []
    add = runs.append
    products: Products = []
    open_round: list[int] = []
    open_square: list[int] = []
    for token in _ATTENTION_PIECE.findall(text):
        first = token[0]
        if first == "(" or first == "[":
            if len(token) == 1:
                (open_round if first == "(" else open_square).append(len(runs))
            else:
                here = len(runs)
                open_round.extend([here] * token.count("("))
                open_square.extend([here] * token.count("["))
        elif first == ")" and open_round:
            products.append((open_round.pop(), len(runs), ROUND_MULTIPLIER))
        elif first == "]" and open_square:
            products.append((open_square.pop(), len(runs), SQUARE_MULTIPLIER))
        elif first == "\\":
            # An escaped bracket or backslash stands for itself; a lone backslash vanishes, as in A1111,
            # so the same prompt gives the same tokens (and the same image) here and there.
            add(token[1:])
        elif first == ":" and len(token) > 1 and open_round:
            try:
                factor = float(token[1:-1].strip())
            except ValueError:  # "(a:1.2.3)": A1111 would crash here; we keep the text instead
                add(token)
                continue
            products.append((open_round.pop(), len(runs), factor))
        elif "BREAK" not in token:
            add(token)
        else:
            for i, part in enumerate(split_break(token)):
                if i:
                    add(None)
                add(part)
    # Unclosed brackets still apply to everything after them (round ones first, as A1111).
    end = len(runs)
    products += [(start, end, ROUND_MULTIPLIER) for start in open_round if start < end]
    products += [(start, end, SQUARE_MULTIPLIER) for start in open_square if start < end]
    return runs, products


def run_weights(runs: list[str | None], products: Products) -> list[float]:
    """Each run's weight (BREAK: -1): the products applied one by one in order, as A1111 does."""
    weights: list[float] = [1.0 if run is not None else -1 for run in runs]
    if sum([stop - start for start, stop, _ in products]) > EXACT_PRODUCTS:
        return _counted_weights(weights, products)
    for start, stop, factor in products:
        if start < stop:
            weights[start:stop] = [w * factor for w in weights[start:stop]]
    return weights


def _counted_weights(weights: list[float], products: Products) -> list[float]:
    """Weights from counted factors (x1.1 and /1.1 cancel exactly; others as sums of logarithms)."""
    size = len(weights)
    level = [0] * (size + 1)  # x1.1 minus /1.1 brackets
    logs = [0.0] * (size + 1)
    negatives = [0] * (size + 1)
    zeros = [0] * (size + 1)
    for start, stop, factor in products:
        if factor == ROUND_MULTIPLIER or factor == SQUARE_MULTIPLIER:
            step = 1 if factor == ROUND_MULTIPLIER else -1
            level[start] += step
            level[stop] -= step
        elif factor == 0:
            zeros[start] += 1
            zeros[stop] -= 1
        else:
            if factor < 0:
                negatives[start] += 1
                negatives[stop] -= 1
            if abs(factor) != 1.0:
                exponent = math.log(abs(factor)) if math.isfinite(factor) else math.inf
                logs[start] += exponent
                logs[stop] -= exponent if math.isfinite(exponent) else 0.0  # an inf covers the rest
    # Running sums (C speed), then one pass; a weight past float range is inf, as A1111's products give.
    sums = zip(weights, accumulate(level), accumulate(logs), accumulate(negatives), accumulate(zeros))
    return [base * (0.0 if n_zero else _exp(n_level * _LOG_ROUND + n_log)) * (-1 if n_neg % 2 else 1)
            for base, n_level, n_log, n_neg, n_zero in sums]


def _exp(exponent: float) -> float:
    return math.inf if exponent > 709 else math.exp(exponent)


_LOG_ROUND = math.log(ROUND_MULTIPLIER)


def split_break(text: str) -> list[str]:
    """`re.split(r"\\s*\\bBREAK\\b\\s*", text)` in linear time (that regex rescans long whitespace runs)."""
    parts = _BREAK_WORD.split(text)
    if len(parts) == 1:
        return parts
    # The whitespace on both sides of a BREAK belongs to it (a part between two is all stripped).
    last = len(parts) - 1
    return [part.rstrip() if i == 0 else part.lstrip() if i == last else part.strip()
            for i, part in enumerate(parts)]


# ---------------------------------------------------------------------------------------------------
# Prompt editing [from:to:when] and alternation [a|b]: a small recursive-descent parser
# ---------------------------------------------------------------------------------------------------

# Syntax tree: a sequence is a list of nodes; a node is a str, a Scheduled, an Alternate or a Group.
Sequence = list


@dataclass
class Scheduled:
    """[before:after:when] (before None for [after:when])."""

    before: Sequence | None
    after: Sequence
    when_text: str
    when: int = 0  # resolved to a step by _resolve_steps


@dataclass
class Alternate:
    """[a|b|c]: option i is used at steps i+1, i+1+n, ..."""

    options: list[Sequence]


@dataclass
class Group:
    """Emphasis brackets, kept verbatim around their (possibly scheduled) content."""

    pieces: list = field(default_factory=list)  # str (bracket chars) or Sequence


class _NoParse(Exception):
    """The text at this position is not the structure we tried."""


# No re.S: a backslash before a newline escapes nothing, so (as in A1111's grammar) it fails the parse.
_PLAIN = re.compile(r"(?:[^\\\[\]():|]|\\.)+")
_NUMBER = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*\]")
_STRAY = "[]():"


class _ScheduleParser:
    """Parses one prompt; positions are indexes into `text`."""

    def __init__(self, text: str):
        self.text = text
        self.literal_squares: list[int] = []  # '[' that formed no structure and were kept as text

    def parse(self) -> Sequence:
        """Top level: structures, plain text and stray bracket characters; anything else fails."""
        nodes: Sequence = []
        pos = 0
        while pos < len(self.text):
            try:
                node, pos = self._item(pos)
            except _NoParse:
                if self.text[pos] not in _STRAY:
                    raise _NoParse(pos) from None  # the character that no rule accepts, for reports
                if self.text[pos] == "[":
                    self.literal_squares.append(pos)
                node, pos = self.text[pos], pos + 1
            nodes.append(node)
        return nodes

    def _sequence(self, pos: int) -> tuple[Sequence, int]:
        """Items until a character that belongs to the enclosing structure (or the end)."""
        nodes: Sequence = []
        while pos < len(self.text) and self.text[pos] not in "]):|":
            node, pos = self._item(pos)
            nodes.append(node)
        return nodes, pos

    def _item(self, pos: int):
        char = self.text[pos]
        if char == "[":
            return self._square(pos + 1)
        if char == "(":
            return self._round(pos + 1)
        match = _PLAIN.match(self.text, pos)
        if match is None:  # a lone trailing backslash, '|' or a closer out of place
            raise _NoParse(pos)
        return match.group(0), match.end()

    def _expect(self, pos: int, char: str) -> int:
        if pos >= len(self.text) or self.text[pos] != char:
            raise _NoParse(pos)
        return pos + 1

    def _round(self, pos: int):
        first, pos = self._sequence(pos)
        if pos < len(self.text) and self.text[pos] == ":":
            second, pos = self._sequence(pos + 1)
            return Group(["(", first, ":", second, ")"]), self._expect(pos, ")")
        return Group(["(", first, ")"]), self._expect(pos, ")")

    def _square(self, pos: int):
        first, pos = self._sequence(pos)
        if pos >= len(self.text):
            raise _NoParse(pos)
        char = self.text[pos]
        if char == "]":
            return Group(["[", first, "]"]), pos + 1
        if char == "|":
            options = [first]
            while pos < len(self.text) and self.text[pos] == "|":
                option, pos = self._sequence(pos + 1)
                options.append(option)
            return Alternate(options), self._expect(pos, "]")
        if char != ":":
            raise _NoParse(pos)
        # [to:when] first; otherwise [from:to:when].
        number = _NUMBER.match(self.text, pos + 1)
        if number:
            return Scheduled(None, first, number.group(1)), number.end()
        second, pos = self._sequence(pos + 1)
        if pos >= len(self.text) or self.text[pos] != ":":
            raise _NoParse(pos)
        number = _NUMBER.match(self.text, pos + 1)
        if not number:
            raise _NoParse(pos)
        return Scheduled(first, second, number.group(1)), number.end()


def _walk(nodes: Sequence):
    """Every node of the tree, depth first (non-chosen branches included, as A1111 counts them)."""
    for node in nodes:
        yield node
        if isinstance(node, Scheduled):
            yield from _walk(node.before or [])
            yield from _walk(node.after)
        elif isinstance(node, Alternate):
            for option in node.options:
                yield from _walk(option)
        elif isinstance(node, Group):
            for piece in node.pieces:
                if isinstance(piece, list):
                    yield from _walk(piece)


def _render(nodes: Sequence, step: int) -> str:
    out = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, Scheduled):
            out.append(_render(node.before or [], step) if step <= node.when else _render(node.after, step))
        elif isinstance(node, Alternate):
            out.append(_render(node.options[(step - 1) % len(node.options)], step))
        else:
            out.extend(p if isinstance(p, str) else _render(p, step) for p in node.pieces)
    return "".join(out)


def get_learned_conditioning_prompt_schedules(
    prompts: list[str], base_steps: int, hires_steps: int | None = None, use_old_scheduling: bool = False
) -> list[list[list]]:
    """Per prompt, [[end_at_step, text], ...]: the text for step s is the first entry with end >= s.

    Fractions (written with a '.') are of the pass's steps; integers are absolute steps. With hires_steps
    the schedule is for the hires pass: integers count on from base_steps and fractions from 1.0.
    """
    if hires_steps is None or use_old_scheduling:
        steps, int_offset, frac_offset = base_steps, 0, 0.0
    else:
        steps, int_offset, frac_offset = hires_steps, base_steps, 1.0

    def resolve(node: Scheduled) -> int:
        value = float(node.when_text)
        if use_old_scheduling:
            value = value * steps if value < 1 else value
        elif "." in node.when_text:
            value = (value - frac_offset) * steps
        else:
            value = value - int_offset
        return min(steps, int(value))

    def schedule(prompt: str) -> list[list]:
        # Walking and rendering recurse like parsing does, so they sit under the same safety net.
        try:
            tree = _ScheduleParser(prompt).parse()
            boundaries = {steps}
            for node in _walk(tree):
                if isinstance(node, Scheduled):
                    node.when = resolve(node)
                    if node.when >= 1:
                        boundaries.add(node.when)
                elif isinstance(node, Alternate):
                    boundaries.update(range(1, steps + 1))
            return [[step, _render(tree, step)] for step in sorted(boundaries)]
        except (_NoParse, RecursionError, ValueError, OverflowError):
            # Worst case, as in A1111: the prompt as written, for every step.
            return [[steps, prompt]]

    # Each distinct prompt is parsed once (a batch usually repeats the same text).
    schedules = {prompt: schedule(prompt) for prompt in set(prompts)}
    return [schedules[prompt] for prompt in prompts]


# ---------------------------------------------------------------------------------------------------
# Composable diffusion: "a AND b:0.5"
# ---------------------------------------------------------------------------------------------------

_AND = re.compile(r"\bAND\b")
# A trailing ":number" is the sub-prompt's weight; whitespace before it and at the end is dropped. A1111
# matches `^(.*?)(?:\s*:\s*NUMBER)?\s*$`, whose lazy start retries the rest at every character (hours on a
# megabyte of spaces); the weight can only follow the last colon, so that is the one place to look.
_WEIGHT_AFTER_COLON = re.compile(r"\s*([-+]?(?:\d+\.?|\d*\.\d+))\s*")


MulticondList = tuple[list[list[tuple[int, float]]], list[str], dict[str, int]]


def get_multicond_prompt_list(prompts: list[str]) -> MulticondList:
    """Split prompts on AND: (per-prompt [(flat index, weight)], deduplicated sub-prompts, text -> index)."""
    res_indexes: list[list[tuple[int, float]]] = []
    flat: list[str] = []
    index_of: dict[str, int] = {}
    for prompt in prompts:
        indexes = []
        for sub in _AND.split(prompt):
            text, weight = split_subprompt_weight(sub)
            if text not in index_of:
                index_of[text] = len(flat)
                flat.append(text)
            indexes.append((index_of[text], float(weight) if weight is not None else 1.0))
        res_indexes.append(indexes)
    return res_indexes, flat, index_of


def split_subprompt_weight(sub: str) -> tuple[str, str | None]:
    """("a cat", "0.5") for "a cat :0.5 "; (text without trailing whitespace, None) without a weight."""
    colon = sub.rfind(":")
    if colon >= 0:
        weight = _WEIGHT_AFTER_COLON.fullmatch(sub, colon + 1)
        if weight is not None:
            return sub[:colon].rstrip(), weight.group(1)
    return sub.rstrip(), None


# ---------------------------------------------------------------------------------------------------
# Reporting: what will not do what it looks like, by position (parsing itself never fails)
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PromptIssue:
    """One finding; `position` is a 0-based index into the prompt text."""

    position: int
    message: str

    def __str__(self) -> str:
        return f"character {self.position + 1}: {self.message}"


def check_prompt_syntax(text: str) -> list[PromptIssue]:
    """Unclosed or stray brackets, lone backslashes, editing syntax that falls back to text; by position."""
    issues: list[tuple[int, str]] = []
    open_round: list[int] = []
    open_square: list[int] = []
    # The same tokens and bracket matching as parse_prompt_attention, so the report matches the weights.
    for match in _ATTENTION_TOKEN.finditer(text):
        token, pos, weight = match.group(0), match.start(), match.group(1)
        if token == "\\":
            issues.append((pos, "a lone '\\' is dropped (write '\\\\' for a backslash)"))
        elif token in "([":
            (open_round if token == "(" else open_square).append(pos)
        elif weight is not None and open_round:
            try:
                float(weight)
                open_round.pop()
            except ValueError:
                issues.append((match.start(1), f"weight {weight!r} is not a number; kept as text"))
        elif token in (")", "]") or weight is not None:
            stack = open_square if token == "]" else open_round
            if stack:
                stack.pop()
            else:
                issues.append((match.end() - 1, f"'{token[-1]}' closes nothing and is kept as text"))
    issues += [(pos, "'(' is never closed: everything after it is weighted x1.1") for pos in open_round]
    issues += [(pos, "'[' is never closed: everything after it is weighted /1.1") for pos in open_square]

    parser = _ScheduleParser(text)
    try:
        parser.parse()
    except _NoParse as exc:
        pos = exc.args[0]
        off = "so prompt editing and [a|b] are off (the prompt is used as written)"
        issues.append((pos, f"{text[pos]!r} cannot appear here, {off}"))
    except RecursionError:
        issues.append((0, "brackets nested too deeply for prompt editing (the prompt is used as written)"))
    # An unclosed '[' is already reported above; a closed one that is still text has a malformed inside.
    issues += [(pos, "'[' is not [x], [a|b], [to:when] or [from:to:when]; kept as text")
               for pos in parser.literal_squares if pos not in open_square]
    return [PromptIssue(pos, message) for pos, message in sorted(issues, key=lambda issue: issue[0])]


# ---------------------------------------------------------------------------------------------------
# Comments
# ---------------------------------------------------------------------------------------------------

def strip_comments(text: str) -> str:
    """Drop `#` comments (A1111's enable_prompt_comments): whole comment lines, and `#...` to line end."""
    # Our choice, same tokens as A1111: a comment line may be indented and goes with its newline; an
    # inline comment takes the spaces before it. A1111 leaves that whitespace, which CLIP ignores anyway.
    # Like A1111 there is no escape: any '#' starts a comment (callers apply this only when enabled).
    # Line by line, the same as `re.sub(r"(?m)^[ \t]*#[^\n]*(?:\n|$)", "")` and then
    # `re.sub(r"[ \t]*#[^\n]*", "")`, without the second regex's rescans of long runs of spaces.
    if "#" not in text:
        return text
    lines = text.split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        cut = line.find("#")
        if cut < 0:
            kept.append(line)
        elif line[:cut].strip(" \t"):
            kept.append(line[:cut].rstrip(" \t"))  # text, then a comment to the end of the line
        elif i == len(lines) - 1 and kept:
            kept.append("")  # a comment line at the very end leaves the newline before it
        # else: a whole comment line goes with its newline
    return "\n".join(kept)
