"""The first complete JSON object in a judge's output: a brace-balanced scan that respects strings, then
json.loads (a trailing comma before a closing bracket is forgiven, as the Edit prompt's own example has one).
Never a greedy regex: text after the object, braces included, is ignored."""

from __future__ import annotations

import json
import re

from .parsing import final_region, not_text

def first_json(text, wanted=lambda obj: True) -> tuple[dict | None, str | None]:
    """The first complete JSON object in `text` for which `wanted(obj)`, or (None, why)."""
    why = not_text(text)
    if why:
        return None, why
    region, why = final_region(text)
    if why:
        return None, why
    start, seen_open = region.find("{"), False
    while start != -1:
        seen_open = True
        end = _balanced_end(region, start)
        if end is None:
            return None, "the JSON object is cut off (unbalanced braces)"
        obj = _loads(region[start:end])
        if isinstance(obj, dict) and wanted(obj):
            return obj, None
        start = region.find("{", start + 1)
    return None, "malformed JSON object" if seen_open else "no JSON object found"


def _balanced_end(s: str, start: int) -> int | None:
    depth, in_str, esc = 0, False, False
    for i in range(start, len(s)):
        ch = s[i]
        if in_str:
            esc, in_str = (False, in_str) if esc else (ch == "\\", ch != '"')
        elif ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _loads(span: str):
    for candidate in (span, re.sub(r",(\s*[}\]])", r"\1", span)):
        try:
            return json.loads(candidate, parse_constant=lambda c: float("nan"))
        except ValueError:
            continue
    return None
