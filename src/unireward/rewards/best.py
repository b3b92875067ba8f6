"""Best-of-N: the inference-time use of a reward model. For each prompt's N candidates, their rewards and the index
of the best one.

    picks = best_of_n(rm, [GroupRequest("a red circle", [img1, img2, img3], id="p1"), ...])
    picks[0].best, picks[0].rewards, picks[0].mode         # 2, [0.25, 0.5, 0.75], "win-rate"

The mode is the reward model's own by default: a pairwise judge's win rate over all pairs of the group, both
orders (`win-rate`); a scorer's score (`point`); `mode=` chooses (win-rate, bradley-terry, point). A candidate
without a reward cannot be best; ties go to the lower index. A group that cannot be judged (bad media, no
verdict parsed) has no best (None) and says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from .group import MODES, GroupRequest, GroupReward


@dataclass
class BestOfN:
    id: str | None
    best: int | None  # index of the best candidate; None when no candidate got a reward
    rewards: list[float | None]
    mode: str
    task: str | None = None
    status: str = "ok"  # "ok" | "unparsed" | "error"
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_mode(rm) -> str:
    """`point` for a scorer (its score), `win-rate` for a pairwise judge."""
    backend = getattr(rm, "backend", None)
    return "point" if getattr(backend, "is_scorer", False) else "win-rate"


def pick(g: GroupReward) -> BestOfN:
    """The best candidate of one judged group."""
    scored = [(r, -k) for k, r in enumerate(g.rewards) if r is not None]
    best = -max(scored)[1] if scored else None
    status = g.status if g.status != "ok" or scored else "unparsed"
    reason = g.reason if g.reason or scored else "no candidate got a reward"
    return BestOfN(id=g.id, best=best, rewards=list(g.rewards), mode=g.mode, task=g.task, status=status,
                   reason=reason)


def best_of_n(rm, groups: Sequence[GroupRequest], *, task: str | None = None, mode: str | None = None,
              both_orders: bool = True, seed: int = 0) -> list[BestOfN]:
    """The best of each group's candidates, all groups judged in one batched call (`group_reward_batch`); if
    that call fails, each group is judged alone, so one bad group costs only its own answer."""
    mode = mode or default_mode(rm)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")

    def judge(gs):
        return rm.group_reward_batch(list(gs), task=task, mode=mode, both_orders=both_orders, seed=seed)

    try:
        judged = judge(groups) if groups else []
    except Exception:  # noqa: BLE001 - find the group at fault; the others are judged
        judged = []
        for g in groups:
            try:
                judged.extend(judge([g]))
            except Exception as e:  # noqa: BLE001
                judged.append(GroupReward(task=task or "", mode=mode, rewards=[None] * len(g.candidates),
                                          status="error", reason=f"{type(e).__name__}: {e}", id=g.id))
    return [pick(g) for g in judged]
