"""Group rewards: one reward per candidate of a prompt's group of G samples, as online RL trainers need.

    rm.group_reward("a red circle", [img1, ..., img8], mode="win-rate")          # Pref-GRPO style
    rm.group_reward_batch([GroupRequest(p, imgs) for p, imgs in groups], mode="point")

Modes:
- `win-rate`: every pair of the group is judged (both orders by default); the pair's score for candidate i is
  P(i > j) from the judge's probabilities (ties half) where the backend gives them, else 1 / 0 / 0.5 for a win,
  loss or tie; with both orders the two presentation orders are averaged. An order that did not parse is left
  out and counted; a pair with no parsed order is left out and counted; a candidate with no parsed pair gets
  no reward (None), never a default number.
- `bradley-terry`: the same comparisons, aggregated into Bradley-Terry log-strengths (`grouping.bradley_terry`).
- `point`: each candidate's expected score (`PointResult.reward`) from the point task.

A win rate's group mean is 0.5 by construction and says nothing about progress; give a group a `reference`
(e.g. the starting policy's sample for that prompt) and each candidate is also judged against it, both orders:
`GroupReward.vs_reference` is then an absolute measure to log (the rewards themselves stay within-group).

All pairs of all groups go to the backend in one batched call. Groups are the caller's: `group_rows` forms them
per prompt from a flat batch in any order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Hashable, Sequence

from ..errors import TaskError
from ..grouping import bradley_terry, schedule_pairs
from ..tasks import TIE, Task, get_task, list_tasks

MODES = ("win-rate", "bradley-terry", "point")
_WIN_SCORE = {1: 1.0, 2: 0.0, TIE: 0.5}


@dataclass
class GroupRequest:
    prompt: str
    candidates: list[Any]  # generation: media; understanding: answer texts
    media: Any = None  # understanding: the image or video the answers are about
    id: str | None = None
    reference: Any = None  # pairwise modes: a fixed anchor each candidate is also judged against (both orders)


@dataclass
class GroupReward:
    """Rewards of one group. `rewards[k]` is None when candidate k could not be scored (see `details[k]`)."""

    task: str
    mode: str
    rewards: list[float | None]
    details: list[dict[str, Any]] = field(default_factory=list)
    pairs: int = 0  # pairs judged (win-rate, bradley-terry)
    unparsed: int = 0  # pairs left out: no order parsed (or point candidates unparsed)
    unparsed_orders: int = 0  # single presentation orders that did not parse
    order_agreement: float | None = None  # share of pairs judged in both orders whose two verdicts agreed
    status: str = "ok"  # "ok" | "error" (the whole group failed, e.g. undecodable media)
    reason: str | None = None
    id: str | None = None
    vs_reference: float | None = None  # mean P(candidate > the reference): an absolute measure of progress

    @property
    def mean(self) -> float | None:
        vals = [r for r in self.rewards if r is not None]
        return sum(vals) / len(vals) if vals else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"] = self.mean
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GroupReward":
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})


def resolve_task(task: str | Task | None, mode: str) -> Task:
    """The task for `mode`: pairwise modes need a */pair task, `point` a */point task. A task naming the other
    kind of the same family ("image-gen/pair" for point) is mapped to its sibling."""
    if mode not in MODES:
        raise ValueError(f"unknown group reward mode {mode!r}; use one of {', '.join(MODES)}")
    kind = "point" if mode == "point" else "pair"
    if task is None:
        task = f"image-gen/{kind}"
    t = get_task(task)
    if t.kind != kind:
        sibling = t.name.rsplit("/", 1)[0] + "/" + kind
        if sibling not in list_tasks():
            raise TaskError(f"mode {mode} needs a */{kind} task; {t.name} has no {kind} sibling")
        t = get_task(sibling, dimensions=t.answer.dimensions or False)
    return t


def group_rows(keys: Sequence[Hashable]) -> list[list[int]]:
    """Row indices grouped by key (e.g. the prompt), groups in order of first appearance, rows in batch order."""
    groups: dict[Hashable, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return list(groups.values())


def media_key(m: Any) -> Hashable:
    """What identifies the media a group's answers are about: a string as is, else a content hash (so two
    decodes of the same dataset image fall in one group)."""
    if m is None or isinstance(m, str):
        return m
    from ..media import content_hash

    return content_hash(m)


def group_rewards(rm, groups: Sequence[GroupRequest], *, task: str | Task | None = None, mode: str = "win-rate",
                  both_orders: bool = True, seed: int = 0, variant: str | None = None) -> list[GroupReward]:
    base = resolve_task(task, mode)
    if isinstance(task, Task) and task.kind == base.kind:
        t = task
    else:  # the judge's own prompt family (a released judge renders its authors' prompts)
        t = rm._task(base.name, base.kind, base.answer.dimensions or False, None, variant)
    if mode == "point":
        return _point_rewards(rm, t, groups)
    return _pair_rewards(rm, t, groups, mode, both_orders, seed)


def _point_rewards(rm, t: Task, groups: Sequence[GroupRequest]) -> list[GroupReward]:
    from ..judge import PointRequest

    flat = [PointRequest(g.prompt, c, g.media) for g in groups for c in g.candidates]
    results = rm.score_batch(flat, task=t) if flat else []
    out, pos = [], 0
    for g in groups:
        rs = results[pos: pos + len(g.candidates)]
        pos += len(g.candidates)
        details = [{"reward": r.reward, "score": r.score, "expected_score": r.expected_score, "status": r.status,
                    "reason": r.reason} for r in rs]
        bad = sum(r.reward is None for r in rs)
        errors = [r for r in rs if r.status == "error"]
        status = "error" if rs and len(errors) == len(rs) else "ok"
        out.append(GroupReward(task=t.key, mode="point", rewards=[r.reward for r in rs], details=details,
                               unparsed=bad, status=status, reason=errors[0].reason if status == "error" else None,
                               id=g.id))
    return out


def _pair_rewards(rm, t: Task, groups: Sequence[GroupRequest], mode: str, both_orders: bool,
                  seed: int) -> list[GroupReward]:
    from ..judge import _Prepared

    jobs: list[tuple[int, int, int]] = []  # (group, shown first, shown second)
    prepared, loaded_groups = [], []
    for g_idx, g in enumerate(groups):
        anchor = [] if g.reference is None else [g.reference]
        loaded = rm._prepare(t, g.prompt, list(g.candidates) + anchor, g.media)
        loaded_groups.append(loaded)
        if loaded.error is not None:
            continue
        n = len(g.candidates)
        pairs = schedule_pairs(n, "round-robin", seed=seed + g_idx) + [(k, n) for k in range(n) if anchor]
        for i, j in pairs:
            for a, b in ([(i, j), (j, i)] if both_orders else [(i, j)]):
                jobs.append((g_idx, a, b))
                prepared.append(_Prepared(g.prompt, [loaded.candidates[a], loaded.candidates[b]], loaded.context))
    results = rm._rank_prepared(t, prepared, False, progress=False) if prepared else []
    per_group: list[list[tuple[int, int, Any]]] = [[] for _ in groups]
    for (g_idx, a, b), r in zip(jobs, results):
        per_group[g_idx].append((a, b, r))
    out = []
    for g, loaded, judged in zip(groups, loaded_groups, per_group):
        n = len(g.candidates)
        if loaded.error is not None:
            out.append(GroupReward(task=t.key, mode=mode, rewards=[None] * n,
                                   details=[{"reward": None, "pairs": 0} for _ in range(n)], status="error",
                                   reason=loaded.error, id=g.id))
            continue
        out.append(_aggregate(t, mode, n, judged, g.id, g.reference is not None))
    return out


def order_score(r) -> float | None:
    """The score of the candidate shown first in one judged order: P(first > second) where the judge gave
    probabilities, else 1 / 0 / 0.5 for a win / loss / tie; None when the order did not parse."""
    if r.status != "ok":
        return None
    if r.p_first is not None:
        return r.p_first
    return _WIN_SCORE.get(r.winner)


def _aggregate(t: Task, mode: str, n: int, judged: list, gid, anchored: bool = False) -> GroupReward:
    """Pairs among the n candidates give the rewards; pairs with index n (the reference) give `vs_reference`."""
    orders: dict[tuple[int, int], list[tuple[float, Any]]] = {}
    unparsed_orders = 0
    for a, b, r in judged:
        key = (min(a, b), max(a, b))
        s = order_score(r)
        orders.setdefault(key, [])
        if s is None:
            unparsed_orders += 1
            continue
        orders[key].append((s if a == key[0] else 1.0 - s, r.winner if a == key[0] else _swap(r.winner)))
    outcomes = []  # (i, j, score of i)
    vs_ref: list[float | None] = [None] * n
    agree, both = 0, 0
    unparsed = 0
    for (i, j), seen in orders.items():
        if not seen:
            unparsed += 1
            continue
        score = sum(s for s, _ in seen) / len(seen)
        if j == n:  # against the reference
            vs_ref[i] = score
        else:
            outcomes.append((i, j, score))
        if len(seen) == 2:
            both += 1
            agree += seen[0][1] == seen[1][1]
    won = [0.0] * n
    played = [0] * n
    for i, j, s in outcomes:
        won[i] += s
        won[j] += 1.0 - s
        played[i] += 1
        played[j] += 1
    if mode == "bradley-terry":
        strengths = bradley_terry(n, outcomes)
        rewards = [strengths[k] if played[k] else None for k in range(n)]
    else:
        rewards = [won[k] / played[k] if played[k] else None for k in range(n)]
    details = [{"reward": rewards[k], "win_rate": won[k] / played[k] if played[k] else None, "pairs": played[k]}
               for k in range(n)]
    got = [v for v in vs_ref if v is not None]
    if anchored:
        for k in range(n):
            details[k]["vs_reference"] = vs_ref[k]
    return GroupReward(task=t.key, mode=mode, rewards=rewards, details=details, pairs=len(orders),
                       unparsed=unparsed, unparsed_orders=unparsed_orders,
                       order_agreement=agree / both if both else None, id=gid,
                       vs_reference=sum(got) / len(got) if got else None)


def _swap(w):
    return 3 - w if w in (1, 2) else w
