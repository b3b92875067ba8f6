"""Parsers for judge outputs: pure functions, typed results, an explicit unparsed state.

The decision is taken from the final answer, never from a mention in the reasoning:
1. the region: the last `<answer>...</answer>` block; else the text after the last `</think>`; an unclosed
   `<think>` (reasoning cut off before any answer) is unparsed; else the whole output;
2. in the region, the last "Final/Overall Judgment|Verdict|Decision|Answer:" line (or "Final/Overall Score:"
   for scores) decides, and if it states nothing the output is unparsed;
3. without one (lenient mode only), the last sentence that names a candidate must state the verdict (per-aspect
   lines such as "Alignment: ..." never count as the overall verdict); for scores, the last "Score:" line, a
   "score of N" phrase, or a bare number as the last line.
`strict=True` accepts only the lines the answer format writes (its prefix, verdicts and dimension lines, up to
case, markdown emphasis and a final full stop), the verdict or score line being the region's last line.
Scores are numbers (never compared as strings); a score outside the scale, on another scale ("8/10" for 1-5),
a range ("7-8") or "N/A" is unparsed, never a default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .formats import DIMENSION_LABELS, TIE, PairFormat, PointFormat

# -- candidates and verdict phrases (lenient mode) ------------------------------------------------------------
_NOUN = r"(?:image|picture|video|clip|answer|response|candidate|option|output)"
# "Image 2", "image #1", "the second video"; exactly one of the groups n / ord is set
_REF = rf"(?:\b{_NOUN}\s*#?\s*(?P<n>[12])\b|\b(?:the\s+)?(?P<ord>first|second)\s+(?:one\b|{_NOUN}\b))"
_ADV = r"(?:(?:\w+ly|much|far|a\s+(?:bit|little|lot)|overall|definitely|still)\s+)*"
_GOOD = (r"(?:accurate|helpful|aligned|faithful|correct|appropriate|detailed|complete|informative|relevant"
         r"|realistic|coherent|consistent|natural|precise|plausible)")
_BETTER = (rf"(?:better|superior|preferred|preferable|stronger|more\s+{_GOOD}|(?:of\s+)?higher\s+quality"
           r"|the\s+(?:better|best|winner|stronger|preferred))\b")
_WORSE = rf"(?:worse|inferior|weaker|less\s+{_GOOD}|(?:of\s+)?lower\s+quality)\b"
_COPULA = r"\s+(?:is|was|seems|appears|looks)\s+(?:to\s+be\s+)?"

_MENTION = re.compile(_REF, re.I)
_WIN = re.compile(rf"{_REF}{_COPULA}{_ADV}{_BETTER}", re.I)
_LOSE = re.compile(rf"{_REF}{_COPULA}{_ADV}{_WORSE}", re.I)
_PREFER = re.compile(rf"\b(?:prefer|choose|pick|select|recommend|go\s+with)\s+{_REF}", re.I)
_WINS = re.compile(rf"{_REF}\s+(?:wins|is\s+the\s+winner)\b", re.I)
# "Image 1 is not better", "Answer 2 isn't any better", "Image 1 is no better than Image 2"
_NOT_BETTER = re.compile(rf"{_REF}\s+(?:is|was)(?:\s+not|n't|\s+no)\s+(?:\w+\s+)?{_BETTER}", re.I)
# "I don't think Answer 1 is better", "it is not true that ..."; tested on the text just before a verdict
_NEGATED_BEFORE = re.compile(r"(?:\bnot|n't|\bnever|\bcannot)\s+(?:\w+\s+){0,2}(?:that\s+)?$", re.I)
_TIE = re.compile(
    r"\b(?:equally|equivalent(?:ly)?|tied?|a\s+draw|(?:the\s+)?(?:same|similar|comparable)\s+quality"
    r"|neither\s+(?:\w+\s+)?(?:is|was)\s+(?:\w+ly\s+)?better|no\s+(?:clear\s+)?(?:winner|preference))\b"
    r"|\bboth\s+(?:\w+\s+)?are\s+(?:equally\s+)?(?:good|bad|fine|poor|acceptable|correct|incorrect|wrong)\b", re.I)
_NOT_TIE = re.compile(r"(?:\bnot|n't)\s+(?:\w+\s+)?(?:equally|a\s+tie|tied|the\s+same)\b", re.I)
_BARE = re.compile(rf"^\s*(?:{_NOUN}\s*)?#?\s*([12])\s*\.?\s*$", re.I)

# -- regions and lines --------------------------------------------------------------------------------------------
_ANSWER_BLOCK = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S | re.I)
_THINK_OPEN = re.compile(r"<think>", re.I)
_THINK_CLOSE = re.compile(r"</think>", re.I)
_JUDGMENT = re.compile(r"\b(?:final|overall)\s*(?:judge?ment|verdict|decision|answer|conclusion|choice)\s*[:\-]", re.I)
_ASPECT_LINE = re.compile(r"^[\s\-#>]*(\w+)\s*:\s*(.*)$", re.M)

# -- scores -------------------------------------------------------------------------------------------------------
_SCALE_NOTE = r"(?:\s*\([^)]*\))?"  # "Final Score (1-5): 3"
_FINAL_SCORE = re.compile(rf"\b(?:final|overall|total)\s+(?:score|rating){_SCALE_NOTE}\s*[:=]", re.I)
_PLAIN_SCORE = re.compile(rf"^[\s\-#>]*(?:score|rating){_SCALE_NOTE}\s*[:=]", re.I | re.M)
_SCORE_OF = re.compile(r"\b(?:score|rating)\s+of\b", re.I)
_ASPECT_SCORE = re.compile(rf"^[\s\-#>]*(\w+)\s+(?:score|rating){_SCALE_NOTE}\s*[:=]\s*(.*)$", re.I | re.M)
# a number, an optional "/5" or "out of 5", and what makes it unusable: a range ("7-8") or a decimal comma ("7,5")
_VALUE = re.compile(r"\s*(-?\d+(?:\.\d+)?)(?:\s*(?:/|out\s+of)\s*(\d+(?:\.\d+)?))?(\s*(?:-|–|to)\s*\d|,\d)?", re.I)
_BARE_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)(?:\s*/\s*(\d+(?:\.\d+)?))?\s*\.?\s*$")
_NUMBER = r"(-?\d+(?:\.\d+)?)"

_LABELS = {label.lower(): key for key, label in DIMENSION_LABELS.items()}


@dataclass(frozen=True)
class PairVerdict:
    winner: int | str | None  # 1, 2, "tie", or None when unparsed
    dimensions: dict[str, Any] = field(default_factory=dict)  # name -> winner, or [s1, s2] (None: unparsed)
    reason: str | None = None  # why it did not parse
    scores: list[float | None] | None = None  # candidate 1's and 2's overall scores, where the format has them
    category_winners: dict[str, int | str | None] | None = None  # Flex: category -> winner
    reward: float | None = None  # candidate 1's reward in [0, 1] (tasks/family_formats.py documents it)

    @property
    def parsed(self) -> bool:
        return self.winner is not None


@dataclass(frozen=True)
class PointVerdict:
    score: float | None  # None when unparsed or outside the scale
    dimensions: dict[str, float | None] = field(default_factory=dict)
    reason: str | None = None
    scores: list[float | None] | None = None  # several axes (Edit: two scores)
    reward: float | None = None  # the family's scalar for RL (tasks/family_formats.py documents it)

    @property
    def parsed(self) -> bool:
        return self.score is not None


# -- shared helpers (public: the released families' parsers use them too) ---------------------------------------------
def final_region(text: str) -> tuple[str, str | None]:
    """The part of the output that holds the final answer, or ("", why) when there is none."""
    blocks = _ANSWER_BLOCK.findall(text)
    if blocks:
        return (blocks[-1], None) if blocks[-1].strip() else ("", "empty <answer> block")
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        rest = text[closes[-1].end():]
        return (rest, None) if rest.strip() else ("", "reasoning ends without an answer after </think>")
    if _THINK_OPEN.search(text):
        return "", "reasoning was cut off before an answer (unclosed <think>)"
    return text, None


def unmark(text: str) -> str:
    """Drop markdown emphasis and code marks, which judges sprinkle over verdict lines."""
    return re.sub(r"\*+|`+|__", "", text)


def normalize(s: str) -> str:
    """A verdict line as lines are compared: marks dropped, trimmed, a final full stop dropped, lower case."""
    return unmark(s).strip().rstrip(".").strip().lower()


def _lines(text: str) -> list[str]:
    return [ln for ln in text.strip().splitlines() if ln.strip()]


def _after(region: str, m: re.Match) -> str:
    """What follows a "Final ...:" label: the rest of its line, or the next non-empty line."""
    rest = region[m.end():]
    first, _, more = rest.partition("\n")
    if first.strip():
        return first
    following = _lines(more)
    return following[0] if following else ""


def not_text(text) -> str | None:
    """Why `text` cannot be parsed at all (not a string, or empty), or None when it is text."""
    if not isinstance(text, str):
        return f"output is not text ({type(text).__name__})"
    if not text.strip():
        return "empty output"
    return None


# -- pairs --------------------------------------------------------------------------------------------------------
_UNDECIDED = "undecided"  # a sentence that speaks about the verdict but settles nothing ("Image 1 is not better")


def _which(m: re.Match) -> int:
    return int(m.group("n")) if m.group("n") else (1 if m.group("ord").lower() == "first" else 2)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?;])\s+|\n+|,\s*(?:but|while|whereas|although|though)\s+", text)
            if s.strip()]


def _sentence_verdict(sent: str) -> int | str | None:
    """1, 2, "tie", _UNDECIDED, or None when the sentence states no verdict; the last clause wins."""
    hits: list[tuple[int, int | str]] = []
    for m in _WIN.finditer(sent):
        negated = _NEGATED_BEFORE.search(sent[:m.start()])
        hits.append((m.start(), _UNDECIDED if negated else _which(m)))
    for m in _LOSE.finditer(sent):
        negated = _NEGATED_BEFORE.search(sent[:m.start()])
        hits.append((m.start(), _UNDECIDED if negated else 3 - _which(m)))
    for rx in (_PREFER, _WINS):
        for m in rx.finditer(sent):
            hits.append((m.start(), _which(m)))
    for m in _NOT_BETTER.finditer(sent):
        hits.append((m.start(), _UNDECIDED))
    if not _NOT_TIE.search(sent):
        for m in _TIE.finditer(sent):
            hits.append((m.start(), TIE))
    return max(hits)[1] if hits else None


# "overall, ...", "on the whole": a sentence that sums up; "better in colour", "for its composition": one aspect
_OVERALL = re.compile(r"\b(?:overall|in\s+conclusion|in\s+summary|all\s+in\s+all|on\s+balance|on\s+the\s+whole"
                      r"|altogether|all\s+things\s+considered)\b", re.I)
_ASPECT = re.compile(r"\b(?:in\s+terms\s+of|with\s+respect\s+to|when\s+it\s+comes\s+to|regarding|concerning|in|for"
                     r"|on)\s+(?!(?:my|our|the\s+end|short|conclusion|summary|general|every|all|both|the\s+whole)\b)"
                     r"(?:its\s+|their\s+|the\s+)?[a-z]", re.I)


def _overrules(last: str, earlier: str) -> bool:
    """Whether the deciding sentence settles an earlier, different verdict instead of contradicting it: it sums
    up ("Overall, Image 2 is better"), or it is unqualified while the earlier one was about one aspect
    ("Image 1 is better in colour. ... Image 2 is better.")."""
    if _OVERALL.search(last):
        return True
    return bool(_ASPECT.search(_MENTION.sub("", earlier))) and not _ASPECT.search(_MENTION.sub("", last))


def _decide(fragment: str) -> tuple[int | str | None, str | None]:
    """The verdict of `fragment`: decided by the last sentence that names a candidate or states a tie, and
    unparsed when an earlier sentence states a different verdict (one per aspect, say): the last sentence
    does not silently win over a contradiction."""
    bare = _BARE.match(fragment)
    if bare:
        return int(bare.group(1)), None
    sentences = _sentences(fragment)
    for k in range(len(sentences) - 1, -1, -1):
        sent = sentences[k]
        verdict = _sentence_verdict(sent)
        if verdict == _UNDECIDED:
            return None, f"the verdict is negated or hedged: {sent.strip()[:80]!r}"
        if verdict is not None:
            for earlier in sentences[:k]:
                other = _sentence_verdict(earlier)
                if other in (None, _UNDECIDED, verdict) or _overrules(sent, earlier):
                    continue
                return None, (f"contradicting verdicts: {earlier.strip()[:60]!r} ({other}) and "
                              f"{sent.strip()[:60]!r} ({verdict})")
            return verdict, None
        if _MENTION.search(sent):
            return None, f"the last sentence about a candidate states no verdict: {sent.strip()[:80]!r}"
    return None, "no verdict found"


def parse_pair(text: str, fmt: PairFormat, strict: bool = False) -> PairVerdict:
    """Parse a pairwise verdict. Returns winner 1, 2, "tie" or None (with `reason`)."""
    why = not_text(text)
    if why:
        return PairVerdict(None, reason=why)
    region, why = final_region(text)
    if why:
        return PairVerdict(None, reason=why)
    if strict:
        return _strict_pair(region, fmt)
    region = unmark(region)
    dims, aspect_lines = _pair_dimensions(region)
    judgments = list(_JUDGMENT.finditer(region))
    if judgments:
        winner, why = _decide(_after(region, judgments[-1]))
        if winner is None:
            why = f"final judgment: {why}"
    else:
        overall = "\n".join(ln for ln in region.splitlines() if ln not in aspect_lines)
        winner, why = _decide(overall)
        if winner is None and dims and why == "no verdict found":
            why = "only per-aspect verdicts, no overall verdict"
    if winner == TIE and not fmt.allow_ties:
        return PairVerdict(None, dims, reason="tie stated but this task does not allow ties")
    return PairVerdict(winner, dims, reason=why)


def _pair_dimensions(region: str) -> tuple[dict[str, int | str], set[str]]:
    """Per-aspect verdicts ("Alignment: Image 1 is better ...") and the lines that hold them."""
    out: dict[str, int | str] = {}
    lines: set[str] = set()
    for m in _ASPECT_LINE.finditer(region):
        key = _LABELS.get(m.group(1).lower())
        if key:
            lines.add(m.group(0))
            winner, _ = _decide(m.group(2))
            if winner is not None:
                out[key] = winner
    return out, lines


def _strict_pair(region: str, fmt: PairFormat) -> PairVerdict:
    verdicts = {normalize(fmt.prefix + v): w for w, v in fmt.choices().items()}
    aspects = {normalize(fmt.dimension_line(d, w)): (d, w)
               for d in (fmt.dimensions or DIMENSION_LABELS) for w in fmt.choices()}
    lines = _lines(region)
    dims = dict(aspects[normalize(ln)] for ln in lines if normalize(ln) in aspects)
    winner = verdicts.get(normalize(lines[-1])) if lines else None
    if winner is None:
        return PairVerdict(None, dims, reason="last line is not one of the format's verdict lines")
    return PairVerdict(winner, dims)


# -- points -------------------------------------------------------------------------------------------------------
def _score(value_text: str, fmt: PointFormat) -> tuple[float | None, str | None]:
    """A score from the text after a score label: a number in [low, high], optionally "/high"."""
    m = _VALUE.match(value_text)
    if not m:
        return None, f"score {value_text.strip()[:40]!r} is not a number"
    value, denom, span = m.groups()
    if span:
        return None, f"score {m.group(0).strip()!r} is ambiguous (a range or a decimal comma)"
    if denom is not None and float(denom) != fmt.high:
        return None, f"score {value}/{denom} is on another scale than {fmt.low}-{fmt.high}"
    v = float(value)
    if not fmt.low <= v <= fmt.high:
        return None, f"score {value} outside the scale {fmt.low}-{fmt.high}"
    return v, None


def parse_point(text: str, fmt: PointFormat, strict: bool = False) -> PointVerdict:
    """Parse a pointwise score (a number within the format's scale) and any per-dimension scores."""
    why = not_text(text)
    if why:
        return PointVerdict(None, reason=why)
    region, why = final_region(text)
    if why:
        return PointVerdict(None, reason=why)
    if strict:
        return _strict_point(region, fmt)
    region = unmark(region)
    dims: dict[str, float] = {}
    for m in _ASPECT_SCORE.finditer(region):
        key = _LABELS.get(m.group(1).lower())
        v, _ = _score(m.group(2), fmt) if key else (None, None)
        if v is not None:
            dims[key] = v
    finals = list(_FINAL_SCORE.finditer(region))
    plain = list(_PLAIN_SCORE.finditer(region)) or list(_SCORE_OF.finditer(region))
    lines = _lines(region)
    bare = _BARE_NUMBER.match(lines[-1]) if lines else None
    if finals or plain:
        v, why = _score(_after(region, (finals or plain)[-1]), fmt)
    elif bare:
        v, why = _score(lines[-1], fmt)
    else:
        v, why = None, ("only per-aspect scores, no overall score" if dims else "no score found")
    return PointVerdict(v, dims, reason=why)


def _strict_point(region: str, fmt: PointFormat) -> PointVerdict:
    def line_re(line_at_low: str) -> re.Pattern:
        # the format's line for the lowest score, with that score replaced by a number pattern
        head = normalize(line_at_low)[: -len(fmt.score_text(fmt.low))]
        return re.compile(re.escape(head.strip()) + r"\s*" + _NUMBER)

    final = line_re(fmt.prefix + fmt.score_text(fmt.low))
    aspects = {d: line_re(fmt.dimension_line(d, fmt.low)) for d in (fmt.dimensions or DIMENSION_LABELS)}
    lines = _lines(region)
    dims: dict[str, float] = {}
    for ln in lines:
        for d, rx in aspects.items():
            m = rx.fullmatch(normalize(ln))
            v, _ = _score(m.group(1), fmt) if m else (None, None)
            if v is not None:
                dims[d] = v
    m = final.fullmatch(normalize(lines[-1])) if lines else None
    if not m:
        return PointVerdict(None, dims, reason="last line is not the format's score line")
    v, why = _score(m.group(1), fmt)
    return PointVerdict(v, dims, reason=why)
