"""Answer formats: the only place where verdict and score strings are written.

A pair format renders "Final Judgment: Image 1 is better than Image 2." style verdicts, a point format renders
"Final Score: 4" (optionally preceded by one "<Dimension> Score: n" line per dimension). Templates, training
targets, the logit reader and the parsers all take their strings from here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..grouping import TIE, win_score

Winner = int | str  # 1, 2 or "tie"

DIMENSION_LABELS = {
    "alignment": "Alignment",
    "coherence": "Coherence",
    "physics": "Physics",
    "style": "Style",
}


@dataclass(frozen=True)
class PairFormat:
    """Pairwise verdicts about two candidates called `noun` 1 and `noun` 2."""

    noun: str  # "Image", "Video" or "Answer"
    allow_ties: bool = True
    prefix: str = "Final Judgment: "
    dimensions: tuple[str, ...] = ()
    kind: str = field(default="pair", init=False)

    readable = True  # choice probabilities can be read after `prefix`

    @property
    def plural(self) -> str:
        return self.noun.lower() + "s"

    @property
    def reasoning_stop(self) -> str:
        """Where a judge that writes reasoning first (e.g. per-aspect lines) stops and the verdict is read."""
        return self.prefix

    def parse(self, text: str, strict: bool = False):
        """The verdict, with `reward` = candidate 1's: 1.0 win, 0.0 loss, 0.5 tie."""
        from .parsing import parse_pair

        v = parse_pair(text, self, strict=strict)
        return dataclasses.replace(v, reward=win_score(v.winner))

    def verdict(self, winner: Winner) -> str:
        """The verdict sentence (after the prefix) for winner 1, 2 or "tie"."""
        if winner == TIE:
            if not self.allow_ties:
                raise ValueError(f"this format ({self.noun} pairs) does not allow ties")
            return f"Both {self.plural} are equally good."
        if winner not in (1, 2):
            raise ValueError(f"winner must be 1, 2 or 'tie', got {winner!r}")
        loser = 3 - winner
        return f"{self.noun} {winner} is better than {self.noun} {loser}."

    def choices(self) -> dict[Winner, str]:
        """Winner -> verdict text, in the order the logit reader scores them."""
        out: dict[Winner, str] = {1: self.verdict(1), 2: self.verdict(2)}
        if self.allow_ties:
            out[TIE] = self.verdict(TIE)
        return out

    def dimension_line(self, dim: str, winner: Winner) -> str:
        return f"{DIMENSION_LABELS[dim]}: {self.verdict(winner)}"

    def target(self, winner: Winner, rationale: str | None = None,
               dimensions: dict[str, Winner] | None = None) -> str:
        """The full answer text a judge is trained to write."""
        lines = [rationale.strip()] if rationale else []
        for dim in self.dimensions:
            if dimensions and dim in dimensions:
                lines.append(self.dimension_line(dim, dimensions[dim]))
        lines.append(self.prefix + self.verdict(winner))
        return "\n".join(lines)

    def instructions(self) -> str:
        """How the judge must answer, rendered into templates as `answer_format`."""
        dims = _aspect_lines([self.dimension_line(d, 1) for d in self.dimensions])
        options = [f"'{self.prefix}{v}'" for v in self.choices().values()]
        return dims + "End with exactly one of these lines: " + ", ".join(options[:-1]) + " or " + options[-1] + "."


@dataclass(frozen=True)
class PointFormat:
    """Pointwise scores on an integer scale [low, high]; parsed scores may be decimals inside it."""

    low: int = 1
    high: int = 5
    prefix: str = "Final Score: "
    dimensions: tuple[str, ...] = ()
    subject: str = "image"
    kind: str = field(default="point", init=False)

    readable = True
    allow_ties = False

    @property
    def reasoning_stop(self) -> str:
        return self.prefix

    def parse(self, text: str, strict: bool = False):
        """The score, with `reward` = the score itself (raw, on the task's scale)."""
        from .parsing import parse_point

        v = parse_point(text, self, strict=strict)
        return dataclasses.replace(v, reward=v.score)

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1))

    def choices(self) -> dict[int, str]:
        return {v: str(v) for v in self.values()}

    def score_text(self, score: float) -> str:
        return str(int(score)) if float(score).is_integer() else f"{score:g}"

    def dimension_line(self, dim: str, score: float) -> str:
        return f"{DIMENSION_LABELS[dim]} Score: {self.score_text(score)}"

    def target(self, score: float, rationale: str | None = None,
               dimensions: dict[str, float] | None = None) -> str:
        if not self.low <= score <= self.high:
            raise ValueError(f"score {score} outside the scale {self.low}-{self.high}")
        lines = [rationale.strip()] if rationale else []
        for dim in self.dimensions:
            if dimensions and dim in dimensions:
                lines.append(self.dimension_line(dim, dimensions[dim]))
        lines.append(self.prefix + self.score_text(score))
        return "\n".join(lines)

    def instructions(self) -> str:
        dims = _aspect_lines([self.dimension_line(d, self.high) for d in self.dimensions])
        return (dims + f"Scores are whole numbers from {self.low} (worst) to {self.high} (best). "
                f"End with one line of the form '{self.prefix}{self.high}'.")


AnswerFormat = PairFormat | PointFormat


def _aspect_lines(examples: list[str]) -> str:
    if not examples:
        return ""
    return "First write one line per aspect, in this order: " + "; ".join(f"'{e}'" for e in examples) + ".\n"
