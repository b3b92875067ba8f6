"""Judging groups: one reward per candidate of a prompt's group, as online RL trainers need, and `rank_group`.

    rm.group_reward("a red circle", [img1, ..., img8], mode="win-rate")          # Pref-GRPO style
    rm.group_reward_batch([GroupRequest(p, imgs) for p, imgs in groups], mode="point")

Modes:
- `win-rate`: every pair of the group is judged (both orders by default); the pair's score for candidate i is
  P(i > j) from the judge's probabilities (ties half) where the backend gives them, else `grouping.win_score` of
  the verdict; with both orders the two presentation orders are averaged. An order that did not parse is left
  out and counted; a pair with no parsed order is left out and counted; a candidate with no parsed pair gets
  no reward (None), never a default number. A group in which no pair parsed has status "unparsed".
- `bradley-terry`: the same comparisons, aggregated into Bradley-Terry log-strengths (`grouping.aggregate`).
A pair the model could not take (an error, e.g. an image its processor refuses; not an unparsed verdict) makes the
whole group an error naming that pair: its rewards would be computed without one candidate's comparisons.
- `point`: each candidate's expected score (`PointResult.reward`) from the point task.

`rank_group` is the same judging and aggregation (Bradley-Terry, any comparison schedule), returned as a ranking.

A win rate's group mean is 0.5 by construction and says nothing about progress; give a group a `reference`
(e.g. the starting policy's sample for that prompt) and each candidate is also judged against it, both orders:
`GroupReward.vs_reference` is then an absolute measure to log (the rewards themselves stay within-group).

All pairs of all groups go to the backend in one batched call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from ..errors import TaskError
from ..grouping import aggregate, schedule_pairs, unswap, win_score
from ..tasks import Task, get_task, list_tasks
from .render import PointRequest, Prepared

MODES = ("win-rate", "bradley-terry", "point")


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
    status: str = "ok"  # "ok" | "unparsed" (nothing parsed) | "error" (the group failed, e.g. undecodable media)
    reason: str | None = None
    id: str | None = None
    vs_reference: float | None = None  # mean P(candidate > the reference): an absolute measure of progress
    warnings: list[str] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list, repr=False)  # each judged order

    @property
    def mean(self) -> float | None:
        vals = [r for r in self.rewards if r is not None]
        return sum(vals) / len(vals) if vals else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("comparisons")
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


def group_rewards(rm, groups: Sequence[GroupRequest], *, task: str | Task | None = None, mode: str = "win-rate",
                  both_orders: bool = True, seed: int = 0, variant: str | None = None) -> list[GroupReward]:
    """Rewards of each group, judged by `rm` (a `RewardModel`) in one batched call."""
    base = resolve_task(task, mode)
    if isinstance(task, Task) and task.kind == base.kind:
        t = task
    else:  # the judge's own prompt family (a released judge renders its authors' prompts)
        t = rm.spec.task(base.name, base.kind, base.answer.dimensions or False, None, variant)
    if mode == "point":
        return _point_rewards(rm, t, groups)
    return judge_groups(rm, t, groups, mode, both_orders, "round-robin", seed)


def _point_rewards(rm, t: Task, groups: Sequence[GroupRequest]) -> list[GroupReward]:
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
        status = "error" if rs and len(errors) == len(rs) else "unparsed" if rs and bad == len(rs) else "ok"
        reason = (errors[0].reason if status == "error" else
                  f"no candidate's score parsed: {rs[0].reason}" if status == "unparsed" else None)
        warnings = sorted({w for r in rs for w in r.warnings})
        out.append(GroupReward(task=t.key, mode="point", rewards=[r.reward for r in rs], details=details,
                               unparsed=bad, status=status, reason=reason, id=g.id, warnings=warnings))
    return out


def judge_groups(rm, t: Task, groups: Sequence[GroupRequest], how: str, both_orders: bool,
                 schedule: str = "round-robin", seed: int = 0, rounds: int | None = None) -> list[GroupReward]:
    """Judge each group's scheduled pairs (both orders when asked; each group's reference against every
    candidate, both orders) in one batched call and aggregate them (`how`: win-rate or bradley-terry)."""
    jobs: list[tuple[int, int, int]] = []  # (group, shown first, shown second)
    prepared: list[Prepared] = []
    loaded_groups = []
    for g_idx, g in enumerate(groups):
        anchor = [] if g.reference is None else [g.reference]
        loaded = rm.prepare(t, g.prompt, list(g.candidates) + anchor, g.media)
        loaded_groups.append(loaded)
        if loaded.error is not None:
            continue
        n = len(g.candidates)
        pairs = schedule_pairs(n, schedule, seed=seed + g_idx, rounds=rounds) + [(k, n) for k in range(n) if anchor]
        for i, j in pairs:
            for a, b in ([(i, j), (j, i)] if both_orders else [(i, j)]):
                jobs.append((g_idx, a, b))
                prepared.append(loaded.pair(a, b))
    results = rm.rank_prepared(t, prepared, both_orders=False) if prepared else []
    per_group: list[list[tuple[int, int, Any]]] = [[] for _ in groups]
    for (g_idx, a, b), r in zip(jobs, results):
        per_group[g_idx].append((a, b, r))
    out = []
    for g, loaded, judged in zip(groups, loaded_groups, per_group):
        n = len(g.candidates)
        if loaded.error is not None:
            out.append(GroupReward(task=t.key, mode=how, rewards=[None] * n,
                                   details=[{"reward": None, "pairs": 0} for _ in range(n)], status="error",
                                   reason=loaded.error, id=g.id, warnings=list(rm.spec.warnings)))
            continue
        out.append(aggregate_orders(t, how, n, judged, g.id, g.reference is not None))
    return out


def order_score(r) -> float | None:
    """The score of the candidate shown first in one judged order: P(first > second) where the judge gave
    probabilities, else `win_score` of the verdict; None when the order did not parse."""
    if r.status != "ok":
        return None
    if r.p_first is not None:
        return r.p_first
    return win_score(r.winner)


def aggregate_orders(t: Task, how: str, n: int, judged: list, gid=None, anchored: bool = False) -> GroupReward:
    """A group's reward from its judged orders (a, b, PairResult with a shown first): the orders of a pair are
    averaged, then `grouping.aggregate`; pairs with index n (the reference) give `vs_reference`."""
    orders: dict[tuple[int, int], list[tuple[float, Any]]] = {}
    unparsed_orders = 0
    comparisons, reasons, warnings = [], [], set()
    for a, b, r in judged:
        key = (min(a, b), max(a, b))
        s = order_score(r)
        orders.setdefault(key, [])
        comparisons.append({"i": a, "j": b, "winner": r.winner, "p_first": r.p_first, "status": r.status})
        warnings.update(r.warnings)
        if s is None:
            unparsed_orders += 1
            reasons.append(r.reason)
            continue
        orders[key].append((s if a == key[0] else 1.0 - s, r.winner if a == key[0] else unswap(r.winner)))
    outcomes = []  # (i, j, score of i)
    vs_ref: list[float | None] = [None] * n
    agree, both, unparsed = 0, 0, 0
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
    rewards, played = aggregate(n, outcomes, how)
    win_rates, _ = aggregate(n, outcomes, "win-rate")
    details = [{"reward": rewards[k], "win_rate": win_rates[k], "pairs": played[k]} for k in range(n)]
    got = [v for v in vs_ref if v is not None]
    if anchored:
        for k in range(n):
            details[k]["vs_reference"] = vs_ref[k]
    status, reason = "ok", None
    failed = [(a, b, r) for a, b, r in judged if r.status == "error"]
    if failed:  # an input the model could not take (not a verdict it did not give): the group is not judged
        a, b, r = failed[0]
        return GroupReward(task=t.key, mode=how, rewards=[None] * n,
                           details=[{"reward": None, "pairs": 0} for _ in range(n)], status="error",
                           reason=f"the pair of candidates {a} and {b} could not be judged: {r.reason}", id=gid,
                           warnings=sorted(warnings), comparisons=comparisons)
    if orders and not outcomes and not got:
        status = "unparsed"
        reason = f"none of the {len(orders)} pairs parsed in any order: {reasons[0] if reasons else 'no verdict'}"
    return GroupReward(task=t.key, mode=how, rewards=rewards, details=details, pairs=len(orders),
                       unparsed=unparsed, unparsed_orders=unparsed_orders,
                       order_agreement=agree / both if both else None, id=gid, status=status, reason=reason,
                       vs_reference=sum(got) / len(got) if got else None, warnings=sorted(warnings),
                       comparisons=comparisons)
