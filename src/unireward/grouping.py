"""Ranking a group of N candidates from pairwise judgements: comparison schedules and Bradley-Terry fitting."""

from __future__ import annotations

import math
import random


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
