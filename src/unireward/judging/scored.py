"""Judging with a scorer (`backends.scorer`): the point and pair results a judge gives, from the scorer's numbers.

- point (`score_batch`): `score` is the scorer's number in its own units (`unireward models`), `reward` the same
  number, method "score".
- pair (`rank_batch`, and through it `rank_group` and the pairwise group rewards): both candidates are scored;
  P(1 > 2) = sigmoid((s_1 - s_2) / T), a Bradley-Terry link at the scorer's temperature T (registry, or
  `RewardModel.load(..., temperature=)`); the winner is the higher score ("tie" only for equal scores);
  `scores` = [s_1, s_2]; `reward` = P(1 > 2). A scorer has no position bias: with both orders the scores are the
  same, so `consistent` is True.
- Each distinct (caption, image) of one call is scored once (a group's win rates score each candidate once). A
  video is the mean score of its sampled frames. A prompt-free scorer (the aesthetic predictor) ignores captions.

Scorers judge generated media against a caption: image-gen and video-gen tasks. Understanding and editing tasks
are refused with a TaskError (a scorer cannot compare answers, or an edit with its source).
"""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import TaskError
from ..results import PairResult, PointResult
from ..tasks import Task
from .render import Prepared

METHOD = "score"


def check_task(rm, t: Task) -> None:
    if t.domain != "gen":
        name = rm.backend.spec.name
        raise TaskError(f"{name} is a scorer: it scores generated images and videos against their caption "
                        f"(image-gen and video-gen tasks), and {t.name} is not one; use a judge for it")


def _frames(media: Any) -> list:
    return list(media.frames) if hasattr(media, "frames") else [media]


def score_media(rm, items: Sequence[tuple[str, Any]]) -> list[float | Exception]:
    """The score of each (caption, loaded image or video), each distinct pair scored once (media by content, so
    the same image given twice gets one score, whatever the batch's numerics)."""
    from ..media import content_hash

    backend = rm.backend
    keys = [((p if backend.prompted else None), content_hash(m)) for p, m in items]
    first = {}
    for k, item in zip(keys, items):
        first.setdefault(k, item)
    flat, owner = [], []
    for n, (prompt, media) in enumerate(first.values()):
        for frame in _frames(media):
            flat.append((prompt, frame))
            owner.append(n)
    scores = backend.score([p for p, _ in flat], [f for _, f in flat]) if flat else []
    per: list[list] = [[] for _ in first]
    for n, s in zip(owner, scores):
        per[n].append(s)
    values: list[float | Exception] = []
    for got in per:
        bad = next((s for s in got if isinstance(s, Exception)), None)
        values.append(bad if bad is not None else sum(got) / len(got))
    by_key = dict(zip(first, values))
    return [by_key[k] for k in keys]


def _reason(e: Exception) -> str:
    return f"the scorer failed on this item ({type(e).__name__}: {e})"


def point_results(rm, t: Task, prepared: Sequence[Prepared]) -> list[PointResult]:
    """Point results of prepared requests (one candidate each); a request with an error keeps it."""
    check_task(rm, t)
    stamp = rm.spec.stamp(t)
    ok = [i for i, p in enumerate(prepared) if p.error is None]
    scores = dict(zip(ok, score_media(rm, [(prepared[i].prompt, prepared[i].candidates[0]) for i in ok])))
    name = rm.backend.spec.name
    out = []
    for i, p in enumerate(prepared):
        s = scores.get(i)
        if p.error is not None or isinstance(s, Exception):
            out.append(PointResult(task=t.key, score=None, status="error",
                                   reason=p.error if p.error is not None else _reason(s), method=METHOD, **stamp))
        else:
            out.append(PointResult(task=t.key, score=s, raw=f"{name}: {s:.6g}", method=METHOD, **stamp))
    return out


def pair_results(rm, t: Task, prepared: Sequence[Prepared], both_orders: bool = False) -> list[PairResult]:
    """Pair results of prepared requests (candidate 1 and 2); a request with an error keeps it."""
    check_task(rm, t)
    stamp = rm.spec.stamp(t)
    backend = rm.backend
    ok = [i for i, p in enumerate(prepared) if p.error is None]
    items = [(prepared[i].prompt, c) for i in ok for c in prepared[i].candidates[:2]]
    flat = score_media(rm, items)
    scores = {i: (flat[2 * n], flat[2 * n + 1]) for n, i in enumerate(ok)}
    out = []
    for i, p in enumerate(prepared):
        if p.error is not None:
            out.append(PairResult(task=t.key, winner=None, status="error", reason=p.error, method=METHOD, **stamp))
            continue
        s1, s2 = scores[i]
        bad = next((s for s in (s1, s2) if isinstance(s, Exception)), None)
        if bad is not None:
            out.append(PairResult(task=t.key, winner=None, status="error", reason=_reason(bad), method=METHOD,
                                  **stamp))
            continue
        p1 = backend.p_first(s1, s2)
        winner = 1 if s1 > s2 else 2 if s2 > s1 else "tie"
        out.append(PairResult(task=t.key, winner=winner, probs={"1": p1, "2": 1.0 - p1, "tie": 0.0},
                              consistent=True if both_orders else None, scores=[s1, s2], reward=p1,
                              raw=[f"{backend.spec.name}: {s1:.6g} vs {s2:.6g}"], method=METHOD, **stamp))
    return out
