"""Reward specs: several rewards combined with weights, each normalised within its group first (as Pref-GRPO's
reward dispatcher does), with each reward's absolute mean reported beside the normalised values, so that
progress stays visible (a win rate's group mean is 0.5 by construction).

    spec = RewardSpec([RewardTerm("judge", 0.7, mode="win-rate", task="image-gen/pair"),
                       RewardTerm("oracle", 0.3, fn=my_scores)])          # fn(prompts, candidates, metadata)
    spec = RewardSpec.from_dict({"judge": {"weight": 0.7}, "pickscore": 0.3,          # scorers by short name,
                                 "hps": {"model": "/models/HPS_v2.1_compressed.pt", "weight": 0.2}})  # or a copy
    out = spec.evaluate(judge, prompts, images)                           # rows in any order
    out.rewards      # per reward, per row: its raw value (a scorer's own units, a win rate, ...)
    out.normalised   # per reward, per row: its group advantage
    out.advantages   # one per row: sum_k w_k * (r_k - mean_group) / (std_group + eps)
    out.stats        # {"judge": {"mean": ..., "std": ..., "missing": ...}, ...}

A term with a `model` (a scorer from `unireward models` by short name, hub id or local copy; or any judge, or an
object with `group_reward_batch`) is judged by that model, loaded once per spec (`RewardSpec.model`); a scorer's
term defaults to mode "point" (its score is the reward). The other judge terms use the `judge` given to evaluate.

A row a reward could not score (None) gets advantage 0 for that reward (it pushes the policy neither way) and
is counted in `stats[name]["missing"]`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

from .group import MODES, GroupRequest, GroupReward, group_rows, media_key


@dataclass
class RewardTerm:
    name: str
    weight: float = 1.0
    mode: str = "win-rate"  # win-rate | bradley-terry | point (a judge reward); ignored when fn is given
    task: str | None = None
    both_orders: bool = True
    fn: Callable[[list[str], list[Any], list[Any]], Sequence[float | None]] | None = None  # a non-judge reward
    normalise: bool = True  # per group: (r - mean) / (std + eps); False: r - mean
    model: Any = None  # judged by this model (a name RewardModel.load takes, or a loaded one), not evaluate's judge

    def __post_init__(self):
        if self.fn is None and self.mode not in MODES:
            raise ValueError(f"reward {self.name}: unknown mode {self.mode!r}; use one of {', '.join(MODES)}")
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or not math.isfinite(self.weight):
            raise ValueError(f"reward {self.name}: weight must be a finite number, got {self.weight!r}")


@dataclass
class SpecResult:
    advantages: list[float]  # per row, in the caller's order
    rewards: dict[str, list[float | None]]  # per reward, per row (absolute values)
    combined: list[float | None]  # per row: sum_k w_k r_k (None where any reward is missing)
    normalised: dict[str, list[float]] = field(default_factory=dict)  # per reward, per row: its group advantage
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    groups: list[list[int]] = field(default_factory=list)
    details: dict[str, list[GroupReward]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: per row the advantage and combined reward, per reward its raw and normalised values and stats
        (NaN, e.g. the mean of a reward no row got, as None)."""
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {"advantages": self.advantages, "combined": self.combined, "rewards": self.rewards,
                "normalised": self.normalised, "groups": self.groups,
                "stats": {k: {m: clean(x) for m, x in st.items()} for k, st in self.stats.items()}}


@dataclass
class RewardSpec:
    terms: list[RewardTerm]
    eps: float = 1e-4
    load_options: dict = field(default_factory=dict)  # RewardModel.load keywords for the terms' models (device...)
    models: dict = field(default_factory=dict, repr=False)  # the terms' models, loaded once (by name)

    def model(self, name: Any):
        """The model a term names, loaded on first use and kept (a loaded model is returned as is)."""
        if not isinstance(name, str):
            return name
        if name not in self.models:
            from ..judge import RewardModel

            self.models[name] = RewardModel.load(name, **self.load_options)
        return self.models[name]

    @classmethod
    def from_dict(cls, d: dict[str, Any], fns: dict[str, Callable] | None = None) -> "RewardSpec":
        """{"judge": {"weight": 0.7, "mode": "win-rate", "task": ...}, "oracle": 0.3, "pickscore": 0.3} with `fns`
        naming callables ({"oracle": fn}); a bare number is a weight. A reward is the judge's when it is named
        "judge" or names a mode or task; a reward named after a registered scorer (`unireward models`), or giving
        `"model"`, is judged by that model (mode "point" unless given); else its function must be in `fns` (a
        missing one is an error, never a second judge)."""
        from ..models.scorers import find_scorer

        fns = fns or {}
        unused = sorted(set(fns) - set(d))
        if unused:
            raise ValueError(f"fns names reward(s) {unused} that the spec does not have (rewards: {sorted(d)})")
        terms = []
        for name, v in d.items():
            kw = {"weight": v} if isinstance(v, (int, float)) else dict(v)
            if name not in fns and "model" not in kw and name != "judge" and find_scorer(name) is not None:
                kw["model"] = name
            if isinstance(kw.get("model"), str) and find_scorer(kw["model"]) is not None:
                kw.setdefault("mode", "point")
            if name not in fns and name != "judge" and not {"mode", "task", "model"} & set(kw):
                raise ValueError(f"reward {name!r} has no function in fns and names no judge mode or task, scorer or "
                                 f"model; pass fns={{{name!r}: fn}}, give it {{'mode': ..., 'task': ...}} to make it "
                                 "a judge reward, or {'model': ...} (see `unireward models`)")
            terms.append(RewardTerm(name, fn=fns.get(name), **kw))
        return cls(terms)

    def evaluate(self, judge, prompts: Sequence[str], candidates: Sequence[Any], *, media: Sequence[Any] | None = None,
                 metadata: Sequence[Any] | None = None, keys: Sequence[Hashable] | None = None) -> SpecResult:
        """Score flat rows (`prompts[i]`, `candidates[i]`), grouped by `keys` (default: the prompt, plus the media
        for understanding tasks). `judge` is anything with `group_reward_batch` (a RewardModel, a client)."""
        n = len(prompts)
        for what, seq in (("candidates", candidates), ("media", media), ("metadata", metadata), ("keys", keys)):
            if seq is not None and len(seq) != n:
                raise ValueError(f"{len(seq)} {what} for {n} prompts; pass one per row")
        has_media = media is not None  # (media may be an array: never ask for its truth value)
        keys = list(keys) if keys is not None else [(p, media_key(media[i]) if has_media else None)
                                                    for i, p in enumerate(prompts)]
        groups = group_rows(keys)
        rewards: dict[str, list[float | None]] = {}
        details: dict[str, list[GroupReward]] = {}
        for term in self.terms:
            if term.fn is not None:
                vals = list(term.fn(list(prompts), list(candidates),
                                    list(metadata) if metadata is not None else [None] * n))
                if len(vals) != n:
                    raise ValueError(f"reward {term.name} returned {len(vals)} values for {n} rows")
                rewards[term.name] = [None if v is None or not math.isfinite(v) else float(v) for v in vals]
                continue
            reqs = [GroupRequest(prompts[idx[0]], [candidates[i] for i in idx], media[idx[0]] if has_media else None)
                    for idx in groups]
            source = judge if term.model is None else self.model(term.model)
            if source is None:
                raise ValueError(f"reward {term.name} is the judge's: pass the judge to evaluate (or give the term "
                                 "a model)")
            res = source.group_reward_batch(reqs, task=term.task, mode=term.mode, both_orders=term.both_orders)
            row = [None] * n
            for idx, g in zip(groups, res):
                for i, r in zip(idx, g.rewards):
                    row[i] = r
            rewards[term.name], details[term.name] = row, res
        advantages = [0.0] * n
        stats, normalised = {}, {}
        for term in self.terms:
            vals = rewards[term.name]
            adv = normalised[term.name] = group_advantages(vals, groups, eps=self.eps, normalise=term.normalise)
            for i in range(n):
                advantages[i] += term.weight * adv[i]
            stats[term.name] = summarise(vals)
        combined = [None if any(rewards[t.name][i] is None for t in self.terms)
                    else sum(t.weight * rewards[t.name][i] for t in self.terms) for i in range(n)]
        return SpecResult(advantages, rewards, combined, normalised, stats, groups, details)


def group_advantages(values: Sequence[float | None], groups: list[list[int]], *, eps: float = 1e-4,
                     normalise: bool = True) -> list[float]:
    """Per group: (r - mean) / (std + eps) over the rows that have a value (population std); 0 elsewhere."""
    adv = [0.0] * len(values)
    for idx in groups:
        got = [(i, values[i]) for i in idx if values[i] is not None]
        if not got:
            continue
        mean = sum(v for _, v in got) / len(got)
        std = math.sqrt(sum((v - mean) ** 2 for _, v in got) / len(got))
        for i, v in got:
            adv[i] = (v - mean) / (std + eps) if normalise else v - mean
    return adv


def summarise(values: Sequence[float | None]) -> dict[str, float]:
    got = [v for v in values if v is not None]
    mean = sum(got) / len(got) if got else float("nan")
    std = math.sqrt(sum((v - mean) ** 2 for v in got) / len(got)) if got else float("nan")
    return {"mean": mean, "std": std, "missing": float(len(values) - len(got))}

