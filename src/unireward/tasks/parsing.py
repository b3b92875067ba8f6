"""Parsers for judge outputs: pure functions, typed results, an explicit unparsed state.

The decision is taken from the final answer, never from a mention in the reasoning:
1. the content of the last `<answer>...</answer>` block, if any;
2. else the last "Final/Overall Judgment|Verdict|Decision|Answer:" line (or "Final/Overall Score:" for scores);
3. else (lenient mode only) the last verdict sentence, or the last "Score:" line.
`strict=True` accepts only the exact line the answer format defines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .formats import DIMENSION_LABELS, TIE, PairFormat, PointFormat

_NOUN = r"(?:image|video|answer|response|candidate|option|output|assistant|model|clip)"
_NUM = r"(?:\*\*)?\s*(-?\d+(?:\.\d+)?)\s*(?:\*\*)?"
_BETTER = (r"(?:better|superior|preferred|preferable|more\s+(?:accurate|helpful|aligned|faithful|correct|appropriate)"
           r"|the\s+(?:better|best|winner|preferred\s+one)|stronger|higher\s+quality)")
_WORSE = r"(?:worse|inferior|less\s+(?:accurate|helpful|aligned|faithful|correct))"
_TIE = (r"(?:\b(?:equally|equivalent(?:ly)?|tie[ds]?|a\s+tie|same\s+quality|neither\s+(?:one\s+)?is\s+better"
        r"|no\s+(?:clear\s+)?(?:winner|preference|difference))\b|\bboth\s+\w+\s+are\s+(?:equally\s+)?(?:good|bad|fine|poor|acceptable)\b)")

_ANSWER_BLOCK = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S | re.I)
_JUDGMENT_LINE = re.compile(
    r"(?:final|overall)\s*(?:judge?ment|verdict|decision|answer|conclusion|choice)\s*\**\s*[:\-]\s*\**(.*)", re.I)
_WIN_SENT = re.compile(rf"\b{_NOUN}\s*\**\s*#?([12])\b\**\s+(?:is|was|seems|appears)\s+(?:clearly\s+|slightly\s+|much\s+|overall\s+|definitely\s+)?{_BETTER}", re.I)
_LOSE_SENT = re.compile(rf"\b{_NOUN}\s*\**\s*#?([12])\b\**\s+(?:is|was)\s+(?:clearly\s+|slightly\s+|much\s+)?{_WORSE}", re.I)
_PREFER = re.compile(rf"\b(?:prefer|choose|pick|select|recommend)\s+(?:the\s+)?{_NOUN}\s*\**\s*#?([12])\b", re.I)
_WINS = re.compile(rf"\b{_NOUN}\s*\**\s*#?([12])\b\**\s+(?:wins|is\s+the\s+winner)", re.I)
_NEGATED_TIE = re.compile(r"\b(?:not|n't)\s+(?:equally|a\s+tie|tied|the\s+same)", re.I)
_BARE = re.compile(rf"^\s*\**\s*(?:{_NOUN}\s*)?#?([12])\s*\**\s*\.?\s*$", re.I)
_SCORE_FINAL = re.compile(rf"(?:final|overall|total)\s+(?:score|rating)\s*(?:\([^)]*\))?\s*\**\s*[:=]\s*{_NUM}(?:\s*/\s*(\d+(?:\.\d+)?))?", re.I)
_SCORE_ANY = re.compile(rf"\b(?:score|rating)\s*(?:\([^)]*\))?\s*\**\s*[:=]\s*{_NUM}(?:\s*/\s*(\d+(?:\.\d+)?))?", re.I)
_SCORE_DIM = re.compile(rf"^[\s\-*#]*(\w[\w /&-]*?)\s+(?:score|rating)\s*(?:\([^)]*\))?\s*\**\s*[:=]\s*{_NUM}(?:\s*/\s*(\d+(?:\.\d+)?))?", re.I | re.M)
_PAIR_DIM = re.compile(r"^[\s\-*#]*(\w[\w /&-]*?)\s*\**\s*:\s*(.+)$", re.M)
_BARE_NUMBER = re.compile(rf"^\s*{_NUM}\s*(?:/\s*(\d+(?:\.\d+)?))?\s*\.?\s*$")


@dataclass(frozen=True)
class PairVerdict:
    winner: int | str | None  # 1, 2, "tie", or None when unparsed
    dimensions: dict[str, int | str] = field(default_factory=dict)
    reason: str | None = None  # why it did not parse

    @property
    def parsed(self) -> bool:
        return self.winner is not None


@dataclass(frozen=True)
class PointVerdict:
    score: float | None  # None when unparsed or outside the scale
    dimensions: dict[str, float] = field(default_factory=dict)
    reason: str | None = None

    @property
    def parsed(self) -> bool:
        return self.score is not None


def _final_region(text: str) -> str:
    blocks = _ANSWER_BLOCK.findall(text)
    return blocks[-1] if blocks else text


def _strip(s: str) -> str:
    return re.sub(r"[*_`]", "", s).strip().rstrip(".").strip().lower()


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?;])\s+|\n+|,\s*(?:but|while|whereas|although|though)\s+", text) if s.strip()]


def _decide(fragment: str) -> int | str | None:
    """The decision stated by the last decisive sentence of `fragment`, or None."""
    for sent in reversed(_sentences(fragment)):
        hits: list[tuple[int, int | str]] = []
        for m in _WIN_SENT.finditer(sent):
            hits.append((m.start(), int(m.group(1))))
        for m in _LOSE_SENT.finditer(sent):
            hits.append((m.start(), 3 - int(m.group(1))))
        for rx in (_PREFER, _WINS):
            for m in rx.finditer(sent):
                hits.append((m.start(), int(m.group(1))))
        if hits:
            return max(hits)[1]  # the last decisive clause of the sentence
        if _TIE.search(sent) and not _NEGATED_TIE.search(sent):
            return TIE
        m = _BARE.match(sent)
        if m:
            return int(m.group(1))
    return None


def parse_pair(text: str, fmt: PairFormat, strict: bool = False) -> PairVerdict:
    """Parse a pairwise verdict. Returns winner 1, 2, "tie" or None (with `reason`)."""
    if not isinstance(text, str) or not text.strip():
        return PairVerdict(None, reason="empty output")
    region = _final_region(text)
    dims = _pair_dimensions(region, fmt)
    if strict:
        wanted = {_strip(fmt.prefix + v): w for w, v in fmt.choices().items()}
        for line in reversed(region.strip().splitlines()):
            if line.strip():
                w = wanted.get(_strip(line))
                if w is None:
                    return PairVerdict(None, dims, reason="last line is not one of the format's verdict lines")
                return PairVerdict(w, dims)
        return PairVerdict(None, dims, reason="empty output")
    judgments = _JUDGMENT_LINE.findall(region)
    winner = None
    for j in reversed(judgments):
        winner = _decide(j)
        if winner is not None:
            break
    if winner is None:
        winner = _decide(region)
    if winner is None:
        return PairVerdict(None, dims, reason="no verdict found")
    if winner == TIE and not fmt.allow_ties:
        return PairVerdict(None, dims, reason="tie stated but this task does not allow ties")
    return PairVerdict(winner, dims)


def _pair_dimensions(region: str, fmt: PairFormat) -> dict[str, int | str]:
    out: dict[str, int | str] = {}
    labels = {v.lower(): k for k, v in DIMENSION_LABELS.items()}
    for m in _PAIR_DIM.finditer(region):
        key = labels.get(m.group(1).strip().lower())
        if key:
            w = _decide(m.group(2))
            if w is not None:
                out[key] = w
    return out


def _number(value: str, denom: str | None, fmt: PointFormat) -> tuple[float | None, str | None]:
    v = float(value)
    if denom is not None and float(denom) != fmt.high:
        return None, f"score {value}/{denom} is on another scale than {fmt.low}-{fmt.high}"
    if not fmt.low <= v <= fmt.high:
        return None, f"score {value} outside the scale {fmt.low}-{fmt.high}"
    return v, None


def parse_point(text: str, fmt: PointFormat, strict: bool = False) -> PointVerdict:
    """Parse a pointwise score (a number within the format's scale) and any per-dimension scores."""
    if not isinstance(text, str) or not text.strip():
        return PointVerdict(None, reason="empty output")
    region = _final_region(text)
    dims: dict[str, float] = {}
    labels = {v.lower(): k for k, v in DIMENSION_LABELS.items()}
    for m in _SCORE_DIM.finditer(region):
        name = m.group(1).strip().lower()
        if name in ("final", "overall", "total"):
            continue
        v, _ = _number(m.group(2), m.group(3), fmt)
        if v is not None:
            dims[labels.get(name, name.replace(" ", "_"))] = v
    if strict:
        lines = [ln for ln in region.strip().splitlines() if ln.strip()]
        m = re.fullmatch(re.escape(fmt.prefix.strip()) + r"\s*(\d+)", lines[-1].strip()) if lines else None
        if not m:
            return PointVerdict(None, dims, reason="last line is not the format's score line")
        v, why = _number(m.group(1), None, fmt)
        return PointVerdict(v, dims, reason=why)
    finals = _SCORE_FINAL.findall(region)
    if finals:
        value, denom = finals[-1]
    else:
        anys = [(m.group(1), m.group(2)) for m in _SCORE_ANY.finditer(region)
                if not _is_dimension_score(region, m.start(), labels)]
        lines = [ln for ln in region.strip().splitlines() if ln.strip()]
        bare = _BARE_NUMBER.match(lines[-1]) if lines else None
        if anys:
            value, denom = anys[-1]
        elif bare:
            value, denom = bare.group(1), bare.group(2)
        else:
            return PointVerdict(None, dims, reason="no score found")
    v, why = _number(value, denom or None, fmt)
    return PointVerdict(v, dims, reason=why)


def _is_dimension_score(region: str, pos: int, labels: dict[str, str]) -> bool:
    line_start = region.rfind("\n", 0, pos) + 1
    before = region[line_start:pos].strip(" -*#").strip().lower()
    return bool(before) and before not in ("final", "overall", "total")
