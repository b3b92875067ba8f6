"""How a prompt's N candidates become one (chosen, rejected) pair, or none. Pure functions over verdicts and scores.

- `pair-then-point` (the paper's): shuffle the N candidates into N // 2 pairs; the judge ranks each pair; winners
  go to C, losers to R. A tied, unparsed or failed verdict is skipped and recorded; it NEVER defaults to a
  candidate. Every candidate is scored; chosen = argmax score over C, rejected = argmin score over R (unscored
  candidates are left out, never counted as 0); the prompt is dropped when score(chosen) <= score(rejected).
- `pair-only`: the same ranked pairs; the pair is the decisive pair the judge is most sure of (largest
  |P(first) - 1/2| when probabilities exist, else the first decisive pair in the shuffled order).
- `point-only`: every candidate scored; chosen = argmax, rejected = argmin; dropped when they are equal.
- `random`: two distinct candidates in random roles; no judge call.

Scores are numbers (floats) everywhere; ties in argmax / argmin go to the lower candidate index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

STRATEGIES = ("pair-then-point", "pair-only", "point-only", "random")
NEEDS_PAIRS = {"pair-then-point": True, "pair-only": True, "point-only": False, "random": False}
NEEDS_SCORES = {"pair-then-point": True, "pair-only": False, "point-only": True, "random": False}


@dataclass
class Verdict:
    """One ranked pair of candidate indices. `winner` is 1 (a), 2 (b), "tie" or None (unparsed / error)."""

    a: int
    b: int
    winner: int | str | None
    p_first: float | None = None


@dataclass
class Selection:
    status: str  # "kept" | "dropped"
    chosen: int | None = None
    rejected: int | None = None
    reason: str | None = None
    winners: list[int] = field(default_factory=list)  # C
    losers: list[int] = field(default_factory=list)  # R
    skipped_pairs: list[int] = field(default_factory=list)  # indices into the verdict list: ties and unparsed


def check_strategy(name: str) -> str:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")
    return name


def make_pairs(n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """N // 2 disjoint pairs from a random permutation (an odd candidate out is left unpaired)."""
    perm = [int(i) for i in rng.permutation(n)]
    return [(perm[2 * k], perm[2 * k + 1]) for k in range(n // 2)]


def split_verdicts(verdicts: Sequence[Verdict]) -> tuple[list[int], list[int], list[int]]:
    """(winners C, losers R, skipped verdict indices): only decisive verdicts 1 or 2 place candidates."""
    winners, losers, skipped = [], [], []
    for k, v in enumerate(verdicts):
        if v.winner == 1:
            winners.append(v.a), losers.append(v.b)
        elif v.winner == 2:
            winners.append(v.b), losers.append(v.a)
        else:
            skipped.append(k)
    return winners, losers, skipped


def _arg(best: str, indices: Sequence[int], scores: Sequence[float | None]) -> int | None:
    scored = [i for i in indices if scores[i] is not None]
    if not scored:
        return None
    key = (lambda i: (-float(scores[i]), i)) if best == "max" else (lambda i: (float(scores[i]), i))
    return min(scored, key=key)


def select(strategy: str, n: int, verdicts: Sequence[Verdict] = (), scores: Sequence[float | None] = (),
           rng: np.random.Generator | None = None) -> Selection:
    """Apply `strategy` to one prompt's judgements (see the module docstring)."""
    check_strategy(strategy)
    if strategy == "random":
        if n < 2:
            return Selection("dropped", reason="fewer than two candidates")
        a, b = (int(i) for i in (rng or np.random.default_rng(0)).choice(n, 2, replace=False))
        return Selection("kept", chosen=a, rejected=b)
    if strategy == "point-only":
        chosen, rejected = _arg("max", range(n), scores), _arg("min", range(n), scores)
        if chosen is None:
            return Selection("dropped", reason="no candidate has a score")
        if float(scores[chosen]) <= float(scores[rejected]):
            return Selection("dropped", chosen=chosen, rejected=rejected,
                             reason=f"all scores equal ({float(scores[chosen]):g})")
        return Selection("kept", chosen=chosen, rejected=rejected)
    winners, losers, skipped = split_verdicts(verdicts)
    base = dict(winners=winners, losers=losers, skipped_pairs=skipped)
    if not winners:
        return Selection("dropped", reason=f"no decisive pair ({len(skipped)} tied or unparsed)", **base)
    if strategy == "pair-only":
        decisive = [v for v in verdicts if v.winner in (1, 2)]
        if all(v.p_first is not None for v in decisive):
            best = max(decisive, key=lambda v: abs(v.p_first - 0.5))  # first one wins ties of confidence
        else:
            best = decisive[0]
        win, lose = (best.a, best.b) if best.winner == 1 else (best.b, best.a)
        return Selection("kept", chosen=win, rejected=lose, **base)
    chosen, rejected = _arg("max", winners, scores), _arg("min", losers, scores)
    if chosen is None or rejected is None:
        return Selection("dropped", chosen=chosen, rejected=rejected,
                         reason="no scored " + ("winner" if chosen is None else "loser"), **base)
    if float(scores[chosen]) <= float(scores[rejected]):
        return Selection("dropped", chosen=chosen, rejected=rejected,
                         reason=f"score(chosen)={float(scores[chosen]):g} <= score(rejected)="
                                f"{float(scores[rejected]):g}", **base)
    return Selection("kept", chosen=chosen, rejected=rejected, **base)


def verdict_from(a: int, b: int, result: Any) -> Verdict:
    """A `Verdict` from a judge `PairResult` (unparsed and error results keep winner None)."""
    winner = result.winner if result.status == "ok" or result.winner in (1, 2, "tie") else None
    return Verdict(a, b, winner, result.p_first)


__all__ = ["NEEDS_PAIRS", "NEEDS_SCORES", "STRATEGIES", "Selection", "Verdict", "check_strategy", "make_pairs",
           "select", "split_verdicts", "verdict_from"]
