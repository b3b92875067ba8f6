"""Benchmark metrics: pure functions over labels and predictions, no I/O.

Conventions: a pair label or prediction is 1, 2, "tie" or None (None = the judge's output did not parse; it is
never a default and never correct). Margins are m = r_1 - r_2 (for a judge with probabilities: P(1) - P(2)),
human labels for the VideoGen-RewardBench metrics are h in {1, -1, 0} (candidate 1 better, 2 better, tie).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

TIE = "tie"


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def tau_diff(gold: Sequence, pred: Sequence) -> dict[str, float | None]:
    """GenAI-Bench / UnifiedReward accuracies.

    tau: correct / all items, a tie item being correct only if the prediction is an explicit tie;
    diff: correct / items whose gold is not a tie. Unparsed predictions (None) count as wrong in both.
    """
    if len(gold) != len(pred):
        raise ValueError("gold and pred differ in length")
    correct = [g == p and p is not None for g, p in zip(gold, pred)]
    decisive = [c for g, c in zip(gold, correct) if g != TIE]
    return {"tau": _ratio(sum(correct), len(gold)), "diff": _ratio(sum(decisive), len(decisive))}


def human_sign(label) -> int:
    """1 / 2 / "tie" -> 1 / -1 / 0 (the sign convention of VideoGen-RewardBench's h)."""
    return {1: 1, 2: -1, TIE: 0}[label]


def accuracy_without_ties(h: Sequence[int], m: Sequence[float]) -> float | None:
    """VideoGen-RewardBench without ties: among items with h != 0, the fraction with h*m > 0 (m = 0 is wrong)."""
    h_arr, m_arr = np.asarray(h, dtype=float), np.asarray(m, dtype=float)
    keep = h_arr != 0
    return _ratio(float(np.sum(h_arr[keep] * m_arr[keep] > 0)), int(keep.sum()))


def accuracy_with_ties(h: Sequence[int], m: Sequence[float]) -> tuple[float | None, float | None]:
    """VideoGen-RewardBench with ties: max over thresholds e in {|m_i|} of (C + T) / N, where
    C = #(h != 0, |m| > e, h*m > 0) and T = #(h = 0, |m| <= e). Returns (accuracy, best threshold).

    The threshold is calibrated on the evaluated items themselves (the benchmark's own definition), so the
    number is only meaningful for continuous margins. Ties between thresholds resolve to the smallest one.
    """
    h_arr, m_arr = np.asarray(h, dtype=float), np.abs(np.asarray(m, dtype=float))
    n = len(h_arr)
    if n == 0:
        return None, None
    signed = np.asarray(h, dtype=float) * np.asarray(m, dtype=float)
    right = np.sort(m_arr[(h_arr != 0) & (signed > 0)])  # |m| of decisive items the model gets right
    ties = np.sort(m_arr[h_arr == 0])
    thresholds = np.unique(m_arr)
    c = len(right) - np.searchsorted(right, thresholds, side="right")  # right items with |m| > e
    t = np.searchsorted(ties, thresholds, side="right")  # human ties with |m| <= e
    acc = (c + t) / n
    best = int(np.argmax(acc))
    return float(acc[best]), float(thresholds[best])


def group_accuracy(groups: Sequence[str], correct: Sequence[bool],
                   order: Sequence[str] | None = None) -> dict[str, dict[str, float | int | None]]:
    """Per-group {n, correct, accuracy}, in `order` (then any other group, sorted)."""
    out: dict[str, dict] = {}
    names = list(order or []) + sorted(set(groups) - set(order or []))
    for name in names:
        hits = [c for g, c in zip(groups, correct) if g == name]
        if hits or name in (order or []):
            out[name] = {"n": len(hits), "correct": int(sum(hits)), "accuracy": _ratio(sum(hits), len(hits))}
    return out


def overall_and_macro(groups: Sequence[str], correct: Sequence[bool],
                      order: Sequence[str] | None = None) -> dict[str, float | None]:
    """VL-RewardBench: overall = correct / evaluated; macro = mean of the group accuracies (empty groups skipped)."""
    per = group_accuracy(groups, correct, order)
    accs = [g["accuracy"] for g in per.values() if g["accuracy"] is not None]
    return {"overall": _ratio(sum(correct), len(correct)), "macro": float(np.mean(accs)) if accs else None}


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None with fewer than 2 items or a constant side."""
    if len(x) != len(y):
        raise ValueError("x and y differ in length")
    if len(x) < 2:
        return None
    rx, ry = _ranks(np.asarray(x, dtype=float)), _ranks(np.asarray(y, dtype=float))
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def exact_match(pred: Sequence[float | None], gold: Sequence[float]) -> float | None:
    """Fraction of items whose predicted score, rounded, equals the rounded label (unparsed = wrong)."""
    hits = [p is not None and _round(p) == _round(g) for p, g in zip(pred, gold)]
    return _ratio(sum(hits), len(hits))


def _round(v: float) -> int:
    return int(math.floor(float(v) + 0.5))  # half up, unlike Python's banker's rounding


def rate(flags: Iterable[bool]) -> float | None:
    flags = list(flags)
    return _ratio(sum(flags), len(flags))


def calibration_curve(p: Sequence[float], outcome: Sequence[bool], bins: int = 10) -> dict[str, list]:
    """Reliability diagram data: for equal-width bins of predicted probability, the mean prediction, the observed
    frequency and the count (empty bins left out); plus the expected calibration error."""
    p_arr, y = np.asarray(p, dtype=float), np.asarray(outcome, dtype=float)
    idx = np.minimum((p_arr * bins).astype(int), bins - 1)
    mean_p, freq, count = [], [], []
    for b in range(bins):
        sel = idx == b
        if sel.any():
            mean_p.append(float(p_arr[sel].mean()))
            freq.append(float(y[sel].mean()))
            count.append(int(sel.sum()))
    n = max(len(p_arr), 1)
    ece = sum(c / n * abs(mp - f) for mp, f, c in zip(mean_p, freq, count))
    return {"mean_p": mean_p, "frequency": freq, "count": count, "ece": float(ece) if count else None}
