"""Parsers for the released families' outputs: pure functions, one per format type (family_formats.py).

All of them read the final region first (the last <answer> block, else the text after </think>; an unclosed
<think> is unparsed; parsing.final_region). A part that does not parse is None with a reason, the rest stands:
- rank: the lenient verdict reader of parsing.parse_pair ("Image 1 is better.", "Edited image 2 is better",
  "Overall Judgment: Answer 1 is better than Answer 2."), ties only where the prompt offers one; strict: the
  region's last line must be one of the format's verdict strings (up to case and a final full stop);
- final_score: the "Final Score:" line (parsing.parse_point on the format's scale) and the named dimensions;
- dim_scores: one "<Dim> Score (1-5): x" line per dimension; the overall is their mean when all parse;
- pair_scores: per dimension block, "<Noun> 1: x" and "<Noun> 2: y" on [0, 1] summing to 1 within tolerance;
- edit_pair_scores: "(Edited) Image 1 ...: x" / "... 2 ...: y" (signed), else a JSON "score": [x, y], else
  exactly two numbers in the region;
- json_scores / flex: the FIRST complete JSON object (a brace-balanced scan that respects strings, then
  json.loads; a trailing comma before a closing bracket is forgiven), so text after it, braces included, is
  ignored. `NaN`/`Infinity` literals, booleans and off-scale numbers are unparsed.
"""

from __future__ import annotations

import math
import re
from statistics import mean

from ..grouping import win_score
from .family_formats import sigmoid
from .formats import TIE
from .jsonscan import first_json
from .parsing import PairVerdict, PointVerdict, final_region, normalize, not_text, parse_pair, parse_point, unmark

_NUM = r"[-+]?(?:\d+(?:\.\d+)?|\.\d+)"
_VALUE = re.compile(rf"\s*({_NUM}|nan|-?inf(?:inity)?)(?![\d.])", re.I)


def _region(text):
    why = not_text(text)
    if why:
        return None, why
    region, why = final_region(text)
    return (None, why) if why else (unmark(region), None)


def _number(token: str, low: float | None, high: float | None, what: str) -> tuple[float | None, str | None]:
    """A finite number within [low, high] (open where None) or (None, why)."""
    m = _VALUE.match(token or "")
    if not m:
        return None, f"{what}: {(token or '').strip()[:30]!r} is not a number"
    v = float(m.group(1))
    if not math.isfinite(v):
        return None, f"{what} is {m.group(1)}"
    if (low is not None and v < low) or (high is not None and v > high):
        return None, f"{what} {m.group(1)} outside {low}-{high}"
    return v, None


def _join(reasons: list[str]) -> str | None:
    return "; ".join(reasons) if reasons else None


def _rank_reward(winner) -> float | None:
    return win_score(winner)


# -- pairs ----------------------------------------------------------------------------------------------------
def parse_rank(text, fmt, strict=False) -> PairVerdict:
    if strict:
        region, why = _region(text)
        if why:
            return PairVerdict(None, reason=why)
        lines = [ln for ln in region.strip().splitlines() if ln.strip()]
        wanted = {normalize(fmt.prefix + v): w for w, v in fmt.choices().items()}
        winner = wanted.get(normalize(lines[-1])) if lines else None
        if winner is None:
            return PairVerdict(None, reason="last line is not one of the format's verdicts")
        return PairVerdict(winner, reward=_rank_reward(winner))
    v = parse_pair(text, fmt.lenient())
    return PairVerdict(v.winner, {}, v.reason, reward=_rank_reward(v.winner))


def _pair_winner(s1: float, s2: float):
    return 1 if s1 > s2 else 2 if s2 > s1 else TIE


def parse_pair_scores(text, fmt, strict=False) -> PairVerdict:
    region, why = _region(text)
    if why:
        return PairVerdict(None, reason=why)
    labels = "|".join(re.escape(d) for d in fmt.dims)
    heads = list(re.finditer(rf"^[\s\-#>]*({labels})\s+Score\s*:?[ \t]*$", region, re.I | re.M))
    dims: dict[str, list[float] | None] = {}
    problems: list[str] = []
    for i, h in enumerate(heads):
        block = region[h.end(): heads[i + 1].start() if i + 1 < len(heads) else len(region)]
        name = h.group(1).lower()
        pair, why = _pair_block(block, fmt, name)
        dims[name] = pair
        if why:
            problems.append(why)
    for d in fmt.dims:
        if d.lower() not in dims:
            dims[d.lower()] = None
            problems.append(f"{d.lower()}: no scores")
    good = [p for p in dims.values() if p is not None]
    if not good:
        return PairVerdict(None, dims, reason=_join(problems) or "no scores found")
    s1, s2 = mean(p[0] for p in good), mean(p[1] for p in good)
    return PairVerdict(_pair_winner(s1, s2), dims, _join(problems), scores=[s1, s2], reward=s1)


def _pair_block(block: str, fmt, name: str):
    got = {}
    for m in re.finditer(rf"^[\s\-#>]*{re.escape(fmt.noun)}\s*([12])\s*:(.*)$", block, re.I | re.M):
        got.setdefault(int(m.group(1)), m.group(2))
    if set(got) != {1, 2}:
        return None, f"{name}: needs a score for {fmt.noun} 1 and {fmt.noun} 2"
    v1, w1 = _number(got[1], fmt.low, fmt.high, f"{name} score of {fmt.noun} 1")
    v2, w2 = _number(got[2], fmt.low, fmt.high, f"{name} score of {fmt.noun} 2")
    if w1 or w2:
        return None, w1 or w2
    if abs(v1 + v2 - 1.0) > fmt.sum_tolerance:
        return None, f"{name}: scores {v1:g} + {v2:g} do not sum to 1 (tolerance {fmt.sum_tolerance:g})"
    return [v1, v2], None


# "(Edited) Image 1 ...: -2.5": the label, text that names no other image, then a signed number (or nan / inf)
_EDIT_LABEL = re.compile(r"(?:edited\s+)?image\s*([12])\b(?:(?!image)[^\n\d+\-−])*?(?<![\w.])"
                         r"((?:[-+−]\s?)?(?:\d+(?:\.\d+)?|\.\d+)|nan|inf)(?!\w)", re.I)
_SCORE_LIST = re.compile(r"\"?scores?\"?\s*[:=]\s*\[([^\]]*)\]", re.I)


def parse_edit_pair_scores(text, fmt, strict=False) -> PairVerdict:
    region, why = _region(text)
    if why:
        return PairVerdict(None, reason=why)
    found: dict[int, str] = {}
    for m in _EDIT_LABEL.finditer(region):
        found[int(m.group(1))] = m.group(2)  # the last score named for each image
    if set(found) == {1, 2}:
        tokens = [found[1], found[2]]
    elif (m := _SCORE_LIST.search(region)) and len(parts := [p for p in m.group(1).split(",") if p.strip()]) == 2:
        tokens = parts
    else:
        numbers = re.findall(rf"(?<![\w.]){_NUM}(?![\w.])|\bnan\b", region, re.I)
        if len(numbers) != 2:
            return PairVerdict(None, reason=f"expected one score per edited image, found {len(numbers)} numbers")
        tokens = numbers
    values = [_number(t.replace("−", "-").replace(" ", ""), None, None, f"score of image {k + 1}")
              for k, t in enumerate(tokens)]
    reasons = [w for _, w in values if w]
    if reasons:
        return PairVerdict(None, reason=_join(reasons), scores=[v for v, _ in values])
    s1, s2 = values[0][0], values[1][0]
    return PairVerdict(_pair_winner(s1, s2), scores=[s1, s2], reward=sigmoid(s1 - s2))


def parse_flex(text, fmt, strict=False) -> PairVerdict:
    obj, why = first_json(text, lambda o: "winner" in o or "categories" in o)
    if why:
        return PairVerdict(None, reason=why)
    winner, why_w = _flex_winner(obj.get("winner"), fmt)
    dims: dict[str, list[float] | None] = {}
    cats: dict[str, int | None] = {}
    problems = [f"winner: {why_w}"] if why_w else []
    categories = obj.get("categories")
    if not isinstance(categories, list):
        problems.append("no categories list")
        categories = []
    for c, cat in enumerate(categories):
        cname = str(cat.get("name", f"category {c + 1}")) if isinstance(cat, dict) else f"category {c + 1}"
        if not isinstance(cat, dict):
            problems.append(f"{cname}: not an object")
            continue
        cats[cname], why_c = _flex_winner(cat.get("cat_winner"), fmt)
        if why_c:
            problems.append(f"{cname} winner: {why_c}")
        for d, dim in enumerate(cat.get("dims") or []):
            dname = f"{cname}/{dim.get('name', d + 1) if isinstance(dim, dict) else d + 1}"
            dims[dname], why_d = _flex_scores(dim, fmt, dname)
            if why_d:
                problems.append(why_d)
    good = [p for p in dims.values() if p is not None]
    scores = [mean(p[0] for p in good), mean(p[1] for p in good)] if good else None
    shares = [p[0] / (p[0] + p[1]) for p in good if p[0] + p[1] > 0]
    reward = mean(shares) if shares else _rank_reward(winner)
    if winner is None:
        return PairVerdict(None, dims, _join(problems), scores=scores, category_winners=cats)
    return PairVerdict(winner, dims, _join(problems), scores=scores, category_winners=cats, reward=reward)


def _flex_winner(value, fmt):
    m = re.fullmatch(rf"\s*(?:{re.escape(fmt.noun)}\s*)?([12])\s*\.?\s*", str(value), re.I) \
        if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    return (int(m.group(1)), None) if m else (None, f"{str(value)[:30]!r} names neither {fmt.noun} 1 nor 2")


def _flex_scores(dim, fmt, name):
    if not isinstance(dim, dict):
        return None, f"{name}: not an object"
    out = []
    for k in (1, 2):
        v = dim.get(f"score_{k}")
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            return None, f"{name}: score_{k} missing or not a number"
        x, why = _number(str(v), fmt.low, fmt.high, f"{name} score_{k}")
        if why:
            return None, why
        out.append(x)
    if abs(sum(out) - fmt.total) > fmt.sum_tolerance:
        return None, f"{name}: scores {out[0]:g} + {out[1]:g} do not sum to {fmt.total:g}"
    return out, None


# -- points ---------------------------------------------------------------------------------------------------
def parse_final_score(text, fmt, strict=False) -> PointVerdict:
    from .formats import PointFormat

    overall = parse_point(text, PointFormat(low=int(fmt.low), high=int(fmt.high)), strict=strict)
    dims: dict[str, float | None] = {}
    problems = []
    region, _ = _region(text)
    for d in fmt.dims:
        hits = re.findall(rf"^[\s\-#>]*{re.escape(d)}\s*[:=](.*)$", region or "", re.I | re.M)
        dims[d], why = _number(hits[-1], fmt.dim_low, fmt.dim_high, d) if hits else (None, f"{d}: not found")
        if why:
            problems.append(why)
    reason = overall.reason if not overall.parsed else _join(problems)
    return PointVerdict(overall.score, dims, reason, reward=fmt.normalise(overall.score))


def parse_dim_scores(text, fmt, strict=False) -> PointVerdict:
    region, why = _region(text)
    if why:
        return PointVerdict(None, reason=why)
    dims: dict[str, float | None] = {}
    problems = []
    for d in fmt.dims:
        hits = re.findall(rf"^[\s\-#>]*{re.escape(d)}\s+Score\s*(?:\([^)]*\))?\s*[:=](.*)$", region, re.I | re.M)
        dims[d.lower()], why = _number(hits[-1], fmt.low, fmt.high, d.lower()) if hits else \
            (None, f"{d.lower()}: not found")
        if why:
            problems.append(why)
    if problems:
        return PointVerdict(None, dims, reason="overall needs every dimension: " + _join(problems))
    score = mean(dims.values())
    return PointVerdict(score, dims, reward=fmt.normalise(score))


def parse_json_scores(text, fmt, strict=False) -> PointVerdict:
    obj, why = first_json(text, lambda o: "score" in o)
    if why:
        region, _ = _region(text)
        m = _SCORE_LIST.search(region or "") if not strict else None
        if not m:
            return PointVerdict(None, reason=why)
        raw = [p for p in m.group(1).split(",") if p.strip()]
    else:
        raw = obj.get("score")
        if not isinstance(raw, list):
            return PointVerdict(None, reason=f"\"score\" is not a list: {str(raw)[:40]!r}")
    if len(raw) != len(fmt.axes):
        return PointVerdict(None, reason=f"expected {len(fmt.axes)} scores ({', '.join(fmt.axes)}), got {len(raw)}")
    dims: dict[str, float | None] = {}
    problems = []
    for axis, v in zip(fmt.axes, raw):
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            dims[axis], why = None, f"{axis}: {v!r} is not a number"
        else:
            dims[axis], why = _number(str(v), fmt.low, fmt.high, axis)
        if why:
            problems.append(why)
    scores = [dims[a] for a in fmt.axes]
    if problems:
        return PointVerdict(None, dims, reason=_join(problems), scores=scores)
    score = mean(scores)
    return PointVerdict(score, dims, scores=scores, reward=fmt.normalise(score))
