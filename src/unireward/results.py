"""Typed results of judgements. Every result carries the raw text, the task key and version, and the media policy."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class PairResult:
    """Which of two candidates is better.

    winner: 1, 2, "tie", or None when the output did not parse (never a silent default).
    probs: {"1": p, "2": p, "tie": p} read from token probabilities, when the backend exposes them.
    consistent: with both orders judged, whether the two verdicts agreed (None for one order).
    dimensions: name -> winner (unireward's formats) or [s1, s2] (released pair scores; None where unparsed).
    scores: [candidate 1's, candidate 2's] overall score, where the family's format gives scores.
    category_winners: Flex's per-category winners.
    reward: candidate 1's reward in [0, 1]: p_first when probabilities were read, else the family's mapping of
        the verdict (tasks/family_formats.py; unireward's formats: 1 win, 0 loss, 0.5 tie), None if unparsed.
    """

    task: str
    winner: int | str | None
    probs: dict[str, float] | None = None
    consistent: bool | None = None
    raw: list[str] = field(default_factory=list)  # one raw output per order judged
    dimensions: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"  # "ok" | "unparsed" | "error"
    reason: str | None = None
    method: str = ""  # "probs" | "think+probs" (read after the judge's own reasoning) | "generate"
    task_version: int = 0
    template_hash: str = ""
    media_policy: dict[str, Any] | None = None
    latency_s: float | None = None
    scores: list[float | None] | None = None
    category_winners: dict[str, Any] | None = None
    reward: float | None = None
    family: str = "unireward"
    variant: str = "default"
    warnings: list[str] = field(default_factory=list)  # fallbacks taken (e.g. generated: no probabilities)

    @property
    def p_first(self) -> float | None:
        """P(candidate 1 is better), ties counted half."""
        if not self.probs:
            return None
        return self.probs.get("1", 0.0) + 0.5 * self.probs.get("tie", 0.0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["p_first"] = self.p_first
        return d


@dataclass
class PointResult:
    """A score for one candidate.

    score: the parsed (or most probable) score on the task's scale, None when unparsed.
    expected_score: the mean of the score-token distribution, when the backend exposes probabilities.
    dimensions: per-dimension scores (None where one did not parse); scores: several axes (Edit: two).
    reward: see the property.
    """

    task: str
    score: float | None
    expected_score: float | None = None
    probs: dict[str, float] | None = None
    raw: str = ""
    dimensions: dict[str, float] = field(default_factory=dict)
    status: str = "ok"
    reason: str | None = None
    method: str = ""
    task_version: int = 0
    template_hash: str = ""
    media_policy: dict[str, Any] | None = None
    latency_s: float | None = None
    scores: list[float | None] | None = None
    family: str = "unireward"
    variant: str = "default"
    warnings: list[str] = field(default_factory=list)  # fallbacks taken (e.g. generated: no probabilities)
    family_reward: float | None = field(default=None, repr=False)  # a released family's mapping, when set

    @property
    def reward(self) -> float | None:
        """A released family's documented scalar (normalised to [0, 1]; tasks/family_formats.py) when set;
        else the smoothest available number: the expected score if known, else the parsed score."""
        if self.family_reward is not None:
            return self.family_reward
        return self.expected_score if self.expected_score is not None else self.score

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("family_reward")
        d["reward"] = self.reward
        return d


@dataclass
class GroupResult:
    """A ranking of N candidates from pairwise judgements, aggregated by Bradley-Terry."""

    task: str
    ranking: list[int]  # candidate indices, best first (candidates without a parsed comparison last)
    strengths: list[float | None]  # log-strength per candidate (mean zero); None: no parsed comparison
    comparisons: list[dict[str, Any]] = field(default_factory=list)  # {"i","j","winner","p_first","status"}
    schedule: str = "round-robin"
    unparsed: int = 0  # pairs with no parsed order
    status: str = "ok"  # "ok" | "unparsed" (no comparison parsed) | "error" (the group could not be judged)
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
