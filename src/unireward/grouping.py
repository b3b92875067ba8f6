"""The shared rules of pairwise judging: verdict scores, order swaps, comparison schedules and aggregation.

Every path (the judge, group rewards, rank_group, benchmarks, parsers) takes these rules from here:
- `win_score(winner)`: the score of candidate 1 for a verdict: 1 for a win, 0 for a loss, 0.5 for a tie;
- `unswap(winner)`: a verdict given on the swapped order, in the original order's terms (1 <-> 2, ties kept);
- `schedule_pairs`: which pairs of a group are compared; `aggregate`: per-candidate rewards from pair outcomes,
  by win rate or Bradley-Terry log-strength (`bradley_terry`).
"""

from __future__ import annotations

import math
import random
from typing import Any

TIE = "tie"  # the verdict "both equally good"
WIN_SCORES = {1: 1.0, 2: 0.0, TIE: 0.5}
AGGREGATIONS = ("win-rate", "bradley-terry")


def win_score(winner: Any) -> float | None:
    """Candidate 1's score for a verdict (1 / 0 / 0.5 for a win / loss / tie); None for no verdict."""
    return WIN_SCORES.get(winner) if isinstance(winner, (int, str)) else None


def unswap(winner: Any) -> Any:
    """A verdict given with the candidates shown in swapped order, in the original order's terms."""
    return 3 - winner if winner in (1, 2) else winner


def swap_probs(probs: dict[str, float] | None) -> dict[str, float] | None:
    """Choice probabilities {"1", "2", "tie"} of the swapped order, in the original order's terms."""
    if probs is None:
        return None
    return {"1": probs.get("2", 0.0), "2": probs.get("1", 0.0), "tie": probs.get("tie", 0.0)}


def aggregate(n: int, outcomes: list[tuple[int, int, float]], how: str = "win-rate") -> tuple[list, list[int]]:
    """(reward per candidate, comparisons per candidate) from (i, j, s) outcomes, s = the share of the
    comparison won by i. `win-rate`: mean share won; `bradley-terry`: mean-zero log-strength. A candidate in no
    comparison gets None, never a default number."""
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; use one of {', '.join(AGGREGATIONS)}")
    won = [0.0] * n
    played = [0] * n
    for i, j, s in outcomes:
        won[i] += s
        won[j] += 1.0 - s
        played[i] += 1
        played[j] += 1
    if how == "bradley-terry":
        strengths = bradley_terry(n, outcomes) if n else []
        return [strengths[k] if played[k] else None for k in range(n)], played
    return [won[k] / played[k] if played[k] else None for k in range(n)], played


def schedule_pairs(n: int, schedule: str = "auto", seed: int = 0, rounds: int | None = None) -> list[tuple[int, int]]:
    """Pairs (i, j) to compare, each in a seeded random presentation order.

    round-robin: all n(n-1)/2 pairs (the default up to 8 candidates).
    sparse: a random ring (connects everyone) plus random pairs until each candidate has about
    `rounds` (default ceil(log2 n) + 1) comparisons: O(n log n) judgements instead of O(n^2).
    """
    if n < 2:
        return []
    rng = random.Random(seed)
    if schedule == "auto":
        schedule = "round-robin" if n <= 8 else "sparse"
    if schedule == "round-robin":
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    elif schedule == "sparse":
        k = rounds or math.ceil(math.log2(n)) + 1
        ring = list(range(n))
        rng.shuffle(ring)
        chosen = {tuple(sorted((ring[i], ring[(i + 1) % n]))) for i in range(n)}
        target = min(n * k // 2, n * (n - 1) // 2)
        all_pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if (i, j) not in chosen]
        rng.shuffle(all_pairs)
        degree = [0] * n
        for i, j in chosen:
            degree[i] += 1
            degree[j] += 1
        for i, j in all_pairs:
            if len(chosen) >= target:
                break
            if degree[i] < k or degree[j] < k:
                chosen.add((i, j))
                degree[i] += 1
                degree[j] += 1
        pairs = sorted(chosen)
    else:
        raise ValueError(f"unknown schedule {schedule!r}; use auto, round-robin or sparse")
    return [(i, j) if rng.random() < 0.5 else (j, i) for i, j in pairs]


def bradley_terry(n: int, outcomes: list[tuple[int, int, float]], prior: float = 0.5, iters: int = 500,
                  tol: float = 1e-9) -> list[float]:
    """Fit log-strengths from (i, j, s) outcomes, s = fraction of the comparison won by i (1, 0, 0.5 for a tie,
    or a probability). Minorise-maximise updates (Hunter 2004) with a weak prior: every candidate also plays
    `prior` wins and `prior` losses against a virtual opponent of strength 1, which keeps the fit finite when a
    candidate won or lost everything. Returns mean-zero log-strengths."""
    wins = [prior] * n
    games: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for i, j, s in outcomes:
        wins[i] += s
        wins[j] += 1.0 - s
        games[i].append((j, 1.0))
        games[j].append((i, 1.0))
    p = [1.0] * n
    for _ in range(iters):
        new = []
        for i in range(n):
            denom = 2 * prior / (p[i] + 1.0) + sum(c / (p[i] + p[j]) for j, c in games[i])
            new.append(wins[i] / denom)
        delta = max(abs(math.log(a) - math.log(b)) for a, b in zip(new, p))
        p = new
        if delta < tol:
            break
    logs = [math.log(x) for x in p]
    mean = sum(logs) / n
    return [x - mean for x in logs]
