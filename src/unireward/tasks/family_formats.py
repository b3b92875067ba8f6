"""Answer formats of the released judge families (declared in families.yaml, parsed in tasks/released.py).

Every format exposes what the judge needs: `kind` ("pair"/"point"), `parse(text, strict=False)`, `choices()`
(winner or score -> the text read as the continuation after `prefix`), `prefix`, `reasoning_stop` (where a
judge that reasons first stops and the choice is read), `readable` (whether choice probabilities can be read at
all) and `allow_ties`; its verdicts carry `reward`, the one scalar for RL. Rewards, per format type:

- rank (1.0, Think, Edit rank): the winner from the verdict sentence; reward = candidate 1's 1.0 win,
  0.0 loss, 0.5 tie;
- pair_scores (2.0): two floats per dimension, the winner by the means over parsed dimensions; reward =
  candidate 1's mean score over parsed dimensions (its share, in [0, 1]);
- edit_pair_scores (Edit): two signed floats; reward = sigmoid(s1 - s2);
- flex (Flex): JSON with per-category winners and the overall winner; reward = candidate 1's mean share
  s1 / (s1 + s2) over parsed sub-dimensions, without any 1.0 / 0.0 by the winner;
- final_score (1.0): "Final Score: x"; reward = (x - low) / (high - low);
- dim_scores (2.0, 1.0 ACS): "<Dim> Score (1-5): x" per dimension, overall = their mean (all must parse);
  reward = (overall - low) / (high - low);
- json_scores (Edit points): JSON {"score": [a, b]}, overall = mean(a, b) (both must parse); reward =
  overall / 25.

Point rewards are normalised to [0, 1]; unireward's own formats keep the raw (expected) score.
A part that does not parse (a literal `nan`, an off-scale number, a pair not summing to its total within
`sum_tolerance`) is None with a reason; the rest stands; nothing defaults to a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import TaskError
from .formats import TIE, PairFormat


@dataclass(frozen=True)
class ReleasedFormat:
    """Fields shared by every released format."""

    type: str
    prefix: str = ""
    reasoning_stop: str | None = None
    readable: bool = False
    allow_ties: bool = False
    dimensions: tuple[str, ...] = ()  # dimensions *requested* by unireward's own templates: none here
    kind: str = field(default="pair", init=False)

    def choices(self) -> dict:
        return {}

    @property
    def reasons_first(self) -> bool:
        """Whether the family's judges write reasoning before the verdict: then, with probabilities, the judge
        generates up to `reasoning_stop` and reads the choice there (judge.py, "think+probs")."""
        return self.reasoning_stop is not None

    def instructions(self) -> str:
        return ""  # the released prompts state their own answer format

    def target(self, label, rationale=None, dimensions=None) -> str:
        raise TaskError(f"unireward does not write training targets in the released {self.type!r} format")

    def parse(self, text: str, strict: bool = False):
        from . import released

        return getattr(released, f"parse_{self.type}")(text, self, strict=strict)


@dataclass(frozen=True)
class RankFormat(ReleasedFormat):
    """A verdict sentence naming the better candidate (1.0, Think inside <answer>, Edit rank)."""

    noun: str = "Image"
    choice_text: tuple[tuple[Any, str], ...] = ()  # (winner, verdict string) in reading order

    def __post_init__(self):
        object.__setattr__(self, "kind", "pair")
        object.__setattr__(self, "allow_ties", any(w == TIE for w, _ in self.choice_text))

    def choices(self) -> dict:
        return dict(self.choice_text)

    def verdict(self, winner) -> str:
        return self.choices()[winner]

    def lenient(self) -> PairFormat:
        """The format the lenient verdict reader (parsing.parse_pair) is given."""
        return PairFormat(noun=self.noun, allow_ties=self.allow_ties)

    def target(self, label, rationale=None, dimensions=None) -> str:
        if label not in self.choices():
            raise TaskError(f"winner {label!r} is not a verdict of this format ({list(self.choices())})")
        if self.prefix == "<answer>":
            return f"<think>\n{(rationale or '').strip()}\n</think>\n<answer>{self.verdict(label)}</answer>"
        lines = [rationale.strip()] if rationale else []
        return "\n".join(lines + [self.prefix + self.verdict(label)])


@dataclass(frozen=True)
class FinalScoreFormat(ReleasedFormat):
    """1.0 point scores: "Final Score: x" on [low, high], after optional "<dimension>: n" lines."""

    low: float = 1
    high: float = 5
    dims: tuple[str, ...] = ()
    dim_low: float = 1
    dim_high: float = 4

    def __post_init__(self):
        object.__setattr__(self, "kind", "point")

    def values(self) -> list[int]:
        return list(range(int(self.low), int(self.high) + 1))

    def choices(self) -> dict:
        return {v: str(v) for v in self.values()} if self.readable else {}

    def normalise(self, score: float | None) -> float | None:
        return None if score is None else (score - self.low) / (self.high - self.low)


@dataclass(frozen=True)
class DimScoresFormat(FinalScoreFormat):
    """"<Dim> Score (1-5): x" per dimension; the overall score is the mean of all of them."""


@dataclass(frozen=True)
class PairScoresFormat(ReleasedFormat):
    """2.0 pair scores: per dimension "<Dim> Score:" then "<Noun> 1: x" and "<Noun> 2: y", x + y = 1."""

    noun: str = "Image"
    dims: tuple[str, ...] = ()
    low: float = 0.0
    high: float = 1.0
    sum_tolerance: float = 0.05

    def __post_init__(self):
        object.__setattr__(self, "allow_ties", True)


@dataclass(frozen=True)
class EditPairScoresFormat(ReleasedFormat):
    """Edit pair scores: one signed number per edited image (the range is open: "positive to negative")."""

    noun: str = "Image"

    def __post_init__(self):
        object.__setattr__(self, "allow_ties", True)


@dataclass(frozen=True)
class JsonScoresFormat(ReleasedFormat):
    """Edit points: the first JSON object {"reasoning": ..., "score": [a, b]}, each on [low, high]."""

    axes: tuple[str, ...] = ()
    low: float = 0
    high: float = 25

    def __post_init__(self):
        object.__setattr__(self, "kind", "point")

    def normalise(self, score: float | None) -> float | None:
        return None if score is None else (score - self.low) / (self.high - self.low)


@dataclass(frozen=True)
class FlexFormat(ReleasedFormat):
    """Flex: one JSON object with categories (sub-dimension scores summing to `total`), cat_winner, winner."""

    noun: str = "Image"
    low: float = 0
    high: float = 10
    total: float = 10
    sum_tolerance: float = 0.5


_TYPES = {"rank": RankFormat, "final_score": FinalScoreFormat, "dim_scores": DimScoresFormat,
          "pair_scores": PairScoresFormat, "edit_pair_scores": EditPairScoresFormat,
          "json_scores": JsonScoresFormat, "flex": FlexFormat}


def build_format(name: str, spec: dict) -> ReleasedFormat:
    """A format from its families.yaml entry."""
    d = dict(spec)
    kind = d.pop("type")
    if kind not in _TYPES:
        raise TaskError(f"format {name}: unknown type {kind!r}; known: {sorted(_TYPES)}")
    args: dict[str, Any] = {"type": kind}
    for key in ("prefix", "reasoning_stop", "noun", "sum_tolerance", "total"):
        if key in d:
            args[key] = d.pop(key)
    if "choices" in d:
        args["choice_text"] = tuple((TIE if w == "tie" else int(w), str(t)) for w, t in d.pop("choices").items())
    if "scale" in d:
        args["low"], args["high"] = d.pop("scale")
    if "dim_scale" in d:
        args["dim_low"], args["dim_high"] = d.pop("dim_scale")
    for key in ("dims", "axes"):
        if key in d:
            args[key] = tuple(d.pop(key))
    readable = d.pop("readable", kind in ("rank", "final_score"))
    if d:
        raise TaskError(f"format {name}: unknown keys {sorted(d)}")
    fmt = _TYPES[kind](**args)
    object.__setattr__(fmt, "readable", bool(readable) and kind in ("rank", "final_score"))
    return fmt


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
