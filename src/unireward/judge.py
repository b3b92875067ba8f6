"""RewardModel: the facade users hold. Ranks pairs, scores single candidates and ranks groups.

    rm = RewardModel.load("path/to/judge")                      # transformers, in process
    rm = RewardModel.load("http://127.0.0.1:8000/v1", backend="openai", model="judge")  # vLLM / SGLang / ours
    rm.rank("a red circle", "a.png", "b.png", task="image-gen/pair", both_orders=True)
    rm.score("What colour is it?", "Red.", task="image-und/point", media="scene.png")
    rm.rank_group("a red circle", ["1.png", "2.png", "3.png"], task="image-gen/pair")

How a judge is run is its spec (`judging.spec.JudgeSpec`: resolved once, by `load`); the swap, tie and
aggregation rules are `grouping`'s; the verdict is read one of three ways (`JudgeSpec.method_for`):
- "probs": the choice is read from token probabilities right after the answer prefix (one forward pass);
- "think+probs": for a judge that reasons before its verdict (`reasoning=True`, e.g. the shipped sandbox judge's
  checklist, or a format whose judges always reason first, `reasons_first`): the judge writes its reasoning
  greedily up to the format's `reasoning_stop` ("Final Judgment: ", "<answer>"), then the choice is read right
  there; the reasoning is kept in `raw`; reasoning that does not reach the stop within `max_new_tokens` is
  unparsed with that reason;
- "generate": the judge writes its whole answer and it is parsed.
`method="auto"` picks the first that applies; `method="probs"` on a reasoning judge whose probabilities cannot be
read after its reasoning (no token probabilities, a format that cannot be read, `reasoning=False`) is refused
with a TaskError: reading right after the prompt would skip the reasoning and read a coin flip.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Iterable, Sequence

from .backends.base import UNREADABLE, Backend, ChatInput
from .errors import MediaError, PromptTooLongError, UnirewardError
from .grouping import TIE, swap_probs, unswap
from .judging.groups import GroupRequest, group_rewards, judge_groups
from .judging.render import PairRequest, PointRequest, Prepared, input_problem, prepare, render, text_problem
from .judging.scored import pair_results, point_results
from .judging.spec import THINK, JudgeSpec, resolve_spec
from .models.registry import SIDECAR
from .models.scorers import find_scorer
from .results import GroupResult, PairResult, PointResult
from .tasks import Task

JUDGE_DEFAULTS_FILE = SIDECAR  # in a judge folder: {"family"?, "method"?, "reasoning"?, "max_new_tokens"?, ...}
_SETTINGS = ("image_policy", "video_policy", "method", "max_new_tokens", "allow_urls", "variant", "reasoning",
             "chat_template_kwargs", "image_format")

__all__ = ["JUDGE_DEFAULTS_FILE", "THINK", "GroupRequest", "JudgeSpec", "PairRequest", "PointRequest",
           "RewardModel", "input_problem", "resolve_spec", "text_problem"]


class RewardModel:
    def __init__(self, backend: Backend, spec: JudgeSpec | None = None, *, family: str | None = None,
                 **settings: Any):
        """A judge over `backend`, run as `spec` says (`RewardModel.load` resolves it; see `judging.spec`).
        Settings given here (`family`, `variant`, `method`, `reasoning`, `max_new_tokens`, `image_policy`,
        `video_policy`, `allow_urls`; None: not given) replace the spec's fields."""
        unknown = set(settings) - set(_SETTINGS)
        if unknown:
            raise TypeError(f"RewardModel: unknown setting(s) {sorted(unknown)}; known: family, {', '.join(_SETTINGS)}")
        given = {k: v for k, v in settings.items() if v is not None}
        if family is not None:
            given["family"] = family
        self.backend = backend
        self.spec = dataclasses.replace(spec or JudgeSpec(backend=getattr(backend, "name", "hf")), **given)

    # the spec's fields, read-only (a judge's settings change only through a new spec)
    family = property(lambda self: self.spec.family)
    variant = property(lambda self: self.spec.variant)
    method = property(lambda self: self.spec.method)
    reasoning = property(lambda self: self.spec.reasoning)
    max_new_tokens = property(lambda self: self.spec.max_new_tokens)
    image_policy = property(lambda self: self.spec.image_policy)
    video_policy = property(lambda self: self.spec.video_policy)
    allow_urls = property(lambda self: self.spec.allow_urls)

    @classmethod
    def load(cls, model: str, *, backend: str = "hf", device: str | None = None, dtype: str | None = "auto",
             batch_size: int = 8, family: str | None = None, checkpoint: str | None = None,
             **kwargs) -> "RewardModel":
        """Load a judge. backend="hf": a short name from `unireward models`, a hub id or a local directory;
        backend="vllm": the same, run by vLLM's engine in process (`tensor_parallel_size=`, `data_parallel_size=`,
        other `vllm.LLM` options as keyword arguments); backend="openai": a base URL (or several, comma-separated)
        of an OpenAI-compatible server, with
        `served_model=` naming the model there and `checkpoint=` (a registered name or hub id, or the judge's
        folder; else a registered `served_model`) saying which judge it runs.

        The judge's spec (`judging.spec.resolve_spec`: prompt family, variant, method, reasoning, token budget,
        media policies, chat template options) comes from the registry entry, the folder's unireward.json and
        the explicit arguments, in that order; other keyword arguments go to the backend.

        A scorer (`unireward models`: clipscore, pickscore, hpsv2.1, imagereward, aesthetic; a hub id or a local
        copy of one) loads as the scorer backend (`backends.scorer`, `temperature=` its pair link's T) and
        answers the same calls (`judging.scored`)."""
        settings = {k: kwargs.pop(k) for k in _SETTINGS if k in kwargs}
        if backend == "hf" and find_scorer(model) is not None:
            from .backends.scorer import ScorerBackend

            b = ScorerBackend.load(model, device=device, dtype=dtype, batch_size=batch_size, **kwargs)
            return cls(b, JudgeSpec(model=str(model)), **settings)
        served = kwargs.pop("served_model", None) or kwargs.pop("model", None)
        spec = resolve_spec(model, backend=backend, family=family, checkpoint=checkpoint, served_model=served,
                            **settings)
        options = {k: v for k, v in spec.backend_options().items() if v not in (None, {})}
        if backend == "hf":
            from .backends.hf import HFBackend

            b: Backend = HFBackend.load(spec.model, device=device, dtype=dtype, batch_size=batch_size,
                                        **options, **kwargs)
        elif backend == "vllm":
            from .backends.vllm import VLLMBackend

            b = VLLMBackend.load(spec.model, dtype=dtype, **options, **kwargs)
        else:
            from .backends.openai import OpenAIBackend

            b = OpenAIBackend(spec.model, **options, **kwargs)
        return cls(b, spec)

    # -- public API ------------------------------------------------------------------------------------------
    def rank(self, prompt: str, a: Any, b: Any, *, task: str | Task = "image-gen/pair", media: Any = None,
             both_orders: bool = False, dimensions: bool = False, template: str | None = None,
             variant: str | None = None) -> PairResult:
        return self.rank_batch([PairRequest(prompt, a, b, media)], task=task, both_orders=both_orders,
                               dimensions=dimensions, template=template, variant=variant)[0]

    def score(self, prompt: str, candidate: Any, *, task: str | Task = "image-gen/point", media: Any = None,
              dimensions: bool = False, template: str | None = None, variant: str | None = None) -> PointResult:
        return self.score_batch([PointRequest(prompt, candidate, media)], task=task, dimensions=dimensions,
                                template=template, variant=variant)[0]

    def rank_batch(self, requests: Sequence[PairRequest], *, task: str | Task = "image-gen/pair",
                   both_orders: bool = False, dimensions: bool = False, template: str | None = None,
                   progress: bool = False, variant: str | None = None) -> list[PairResult]:
        t = self.task(task, "pair", dimensions, template, variant)
        prepared = [self.prepare(t, r.prompt, [r.a, r.b], r.media) for r in requests]
        return self.rank_prepared(t, prepared, both_orders, progress)

    def score_batch(self, requests: Sequence[PointRequest], *, task: str | Task = "image-gen/point",
                    dimensions: bool = False, template: str | None = None, progress: bool = False,
                    variant: str | None = None) -> list[PointResult]:
        t = self.task(task, "point", dimensions, template, variant)
        prepared = [self.prepare(t, r.prompt, [r.candidate], r.media) for r in requests]
        if self.backend.is_scorer:
            return point_results(self, t, prepared)
        start = time.perf_counter()
        ok = [i for i, p in enumerate(prepared) if p.error is None]
        inputs = [render(t, prepared[i], swap=False) for i in ok]
        results: list[PointResult | None] = [None] * len(prepared)
        for i, p in enumerate(prepared):
            if p.error is not None:
                results[i] = self._point_error(t, p.error)
        fmt = t.answer
        mode = self.method_for(t)
        for chunk in _chunks(list(range(len(ok))), 256 if progress else len(ok) or 1, progress, "scoring"):
            rendered = [inputs[c] for c in chunk]
            outputs = self._run(t, rendered, mode)
            for c, out in zip(chunk, outputs):
                i = ok[c]
                if isinstance(out, Exception):
                    results[i] = self._point_error(t, str(out))
                elif mode != "generate":
                    row, before, why = self._reading(t, out, mode)
                    if row is None:
                        results[i] = PointResult(task=t.key, score=None, raw=before, status="unparsed", reason=why,
                                                 method=mode, **self._stamp(t, mode))
                        continue
                    values = fmt.values()
                    probs = {str(v): p for v, p in zip(values, row)}
                    best = values[max(range(len(row)), key=row.__getitem__)]
                    expected = sum(v * p for v, p in zip(values, row))
                    raw = before + fmt.choices()[best]
                    dims = t.parse(raw).dimensions if mode == THINK else {}  # lines the reasoning wrote
                    results[i] = PointResult(task=t.key, score=float(best), expected_score=expected,
                                             probs=probs, raw=raw, dimensions=dims, method=mode,
                                             family_reward=_normalised(fmt, expected), **self._stamp(t, mode))
                else:
                    v = t.parse(out)
                    results[i] = PointResult(task=t.key, score=v.score, raw=out, dimensions=v.dimensions,
                                             status="ok" if v.parsed else "unparsed", reason=v.reason,
                                             method="generate", scores=v.scores,
                                             family_reward=v.reward if t.family != "unireward" else None,
                                             **self._stamp(t, mode))
        elapsed = time.perf_counter() - start
        for r in results:
            r.latency_s = elapsed / max(len(results), 1)
        return results  # type: ignore[return-value]

    def rank_group(self, prompt: str, candidates: Sequence[Any], *, task: str | Task = "image-gen/pair",
                   media: Any = None, schedule: str = "auto", both_orders: bool = False, seed: int = 0,
                   rounds: int | None = None) -> GroupResult:
        """Rank N candidates by Bradley-Terry strengths fitted to pairwise judgements (probabilities when the
        backend gives them, else wins; ties count half; unparsed comparisons are left out and counted)."""
        t = self.task(task, "pair")
        n = len(candidates) if isinstance(candidates, (list, tuple)) else 0
        if n < 2:
            what = f"{n} candidate(s)" if isinstance(candidates, (list, tuple)) else type(candidates).__name__
            return GroupResult(task=t.key, ranking=[], strengths=[], status="error",
                               reason=f"rank_group needs a list of at least 2 candidates, got {what}",
                               warnings=list(self.spec.warnings))
        used = "round-robin" if schedule == "auto" and n <= 8 else ("sparse" if schedule == "auto" else schedule)
        g = judge_groups(self, t, [GroupRequest(prompt, list(candidates), media)], "bradley-terry", both_orders,
                         used, seed, rounds)[0]
        if g.status == "error":
            return GroupResult(task=t.key, ranking=[], strengths=[], status="error", reason=g.reason,
                               warnings=g.warnings)
        ranking = sorted(range(n), key=lambda k: (g.rewards[k] is None, -(g.rewards[k] or 0.0)))
        return GroupResult(task=t.key, ranking=ranking if g.status == "ok" else [], strengths=g.rewards,
                           comparisons=g.comparisons, schedule=used, unparsed=g.unparsed, status=g.status,
                           reason=g.reason, warnings=g.warnings)

    # -- the steps every path shares (group rewards, the dry run and the server use them too) -----------------
    def task(self, task: str | Task, kind: str, dimensions: bool = False, template: str | None = None,
             variant: str | None = None) -> Task:
        """The task this judge renders for `task` (`JudgeSpec.task`)."""
        return self.spec.task(task, kind, dimensions, template, variant)

    def prepare(self, t: Task, prompt: Any, candidates: Sequence[Any], media: Any = None) -> Prepared:
        """A request checked and its media loaded under the judge's policies (`judging.render.prepare`)."""
        return prepare(self.spec, t, prompt, candidates, media)

    def method_for(self, t: Task) -> str:
        """How this judge reads task `t`'s verdict over its backend (`JudgeSpec.method_for`)."""
        return self.spec.method_for(t, bool(self.backend.supports_probs), self.backend.name)

    def _warnings(self, t: Task, mode: str) -> list[str]:
        fallback = self.spec.fallback(t, mode) if mode == "generate" else None
        return list(self.spec.warnings) + ([fallback] if fallback else [])

    def _stamp(self, t: Task, mode: str | None = None) -> dict:
        stamp = self.spec.stamp(t)
        if mode is not None:
            stamp["warnings"] = self._warnings(t, mode)
        return stamp

    def _reading(self, t: Task, out, mode: str) -> tuple[list[float] | None, str, str | None]:
        """(choice probabilities or None, the text before the choice, why not read) of a probs / THINK output."""
        if mode == THINK:
            return out.probs, out.text, out.reason
        return out, t.answer.prefix, None if out is not None else UNREADABLE

    def _run(self, t: Task, inputs: list[ChatInput], mode: str) -> list:
        """Run one request type over `inputs`. A batch that fails on an item's own problem (a prompt over the
        context, media the processor refuses, e.g. an extreme aspect ratio) is split in halves until the bad items
        fail alone: each gets its exception as its output (an error result naming it), the others are judged."""
        fmt = t.answer
        choices = list(fmt.choices().values())

        def call(xs):
            if mode == "probs":
                return self.backend.choice_probs(xs, fmt.prefix, choices)
            if mode == THINK:
                return self.backend.think_then_read(xs, fmt.reasoning_stop, choices, self.max_new_tokens)
            stop = [fmt.prefix + c for c in choices] if t.is_pair else None
            return self.backend.generate(xs, max_new_tokens=self.max_new_tokens, stop=stop)

        def isolated(xs: list) -> list:
            try:
                return list(call(xs))
            except (PromptTooLongError, MediaError, ValueError) as e:
                if len(xs) == 1:
                    return [e if isinstance(e, UnirewardError) else
                            MediaError(f"the model's processor refused this input: {type(e).__name__}: {e}")]
                mid = len(xs) // 2
                return isolated(xs[:mid]) + isolated(xs[mid:])

        return isolated(list(inputs)) if inputs else []

    def _verdict(self, t: Task, out, mode: str) -> dict:
        if isinstance(out, Exception):
            return {"winner": None, "status": "error", "reason": str(out), "raw": "", "probs": None, "dims": {},
                    "scores": None, "cats": None, "reward": None}
        if mode != "generate":
            row, before, why = self._reading(t, out, mode)
            if row is None:
                return {"winner": None, "status": "unparsed", "reason": why, "raw": before, "probs": None, "dims": {},
                        "scores": None, "cats": None, "reward": None}
            choices = t.answer.choices()
            keys = list(choices)
            probs = {str(k): p for k, p in zip(keys, row)}
            probs.setdefault("tie", 0.0)
            winner = keys[max(range(len(row)), key=row.__getitem__)]
            return {"winner": winner, "status": "ok", "reason": None, "probs": probs, "dims": {},
                    "raw": before + choices[winner], "scores": None, "cats": None,
                    "reward": probs.get("1", 0.0) + 0.5 * probs.get("tie", 0.0)}
        v = t.parse(out)
        return {"winner": v.winner, "status": "ok" if v.parsed else "unparsed", "reason": v.reason, "raw": out,
                "probs": None, "dims": v.dimensions, "scores": v.scores, "cats": v.category_winners,
                "reward": v.reward if v.parsed else None}

    def rank_prepared(self, t: Task, prepared: Sequence[Prepared], both_orders: bool = False,
                      progress: bool = False) -> list[PairResult]:
        """Judge prepared pairs (in one batched call; both orders when asked). Prepared requests with an error
        get it as their result."""
        if self.backend.is_scorer:
            return pair_results(self, t, prepared, both_orders)
        start = time.perf_counter()
        mode = self.method_for(t)
        ok = [i for i, p in enumerate(prepared) if p.error is None]
        orders = [False, True] if both_orders else [False]
        jobs = [(i, swap) for i in ok for swap in orders]
        verdicts: dict[tuple[int, bool], dict] = {}
        step = 256 if progress else max(len(jobs), 1)
        for chunk in _chunks(jobs, step, progress, "ranking"):
            outs = self._run(t, [render(t, prepared[i], swap) for i, swap in chunk], mode)
            for job, out in zip(chunk, outs):
                verdicts[job] = self._verdict(t, out, mode)
        results = []
        for i, p in enumerate(prepared):
            if p.error is not None:
                results.append(PairResult(task=t.key, winner=None, status="error", reason=p.error,
                                          **self._stamp(t, mode)))
                continue
            first = verdicts[(i, False)]
            second = verdicts.get((i, True))
            results.append(self._combine(t, first, second, mode))
        elapsed = time.perf_counter() - start
        for r in results:
            r.latency_s = elapsed / max(len(results), 1)
        return results

    def _combine(self, t: Task, a: dict, b: dict | None, method: str) -> PairResult:
        if b is None:
            return PairResult(task=t.key, winner=a["winner"], probs=a["probs"], raw=[a["raw"]], dimensions=a["dims"],
                              status=a["status"], reason=a["reason"], method=method, scores=a["scores"],
                              category_winners=a["cats"], reward=a["reward"], **self._stamp(t, method))
        wa, wb = a["winner"], unswap(b["winner"])
        raw = [a["raw"], b["raw"]]
        dims, extra = _merge_orders(a, b)
        if a["probs"] and b["probs"]:
            pa, pb = a["probs"], swap_probs(b["probs"])
            probs = {k: (pa[k] + pb[k]) / 2 for k in ("1", "2", "tie")}
            keys = {"1": 1, "2": 2, "tie": TIE}
            winner = keys[max(probs, key=probs.get)]
            return PairResult(task=t.key, winner=winner, probs=probs, consistent=wa == wb, raw=raw, dimensions=dims,
                              method=method, **{**extra, "reward": probs["1"] + 0.5 * probs["tie"]},
                              **self._stamp(t, method))
        if wa is not None and wb is not None:
            winner, consistent = (wa, True) if wa == wb else (TIE, False)
            return PairResult(task=t.key, winner=winner, consistent=consistent, raw=raw, dimensions=dims,
                              method=method, **extra, **self._stamp(t, method))
        if wa is None and wb is None:
            return PairResult(task=t.key, winner=None, raw=raw, status="unparsed" if "error" not in
                              (a["status"], b["status"]) else "error", reason=a["reason"] or b["reason"],
                              method=method, **self._stamp(t, method))
        return PairResult(task=t.key, winner=wa if wa is not None else wb, consistent=None, raw=raw, dimensions=dims,
                          reason="one order did not parse: " + str(a["reason"] or b["reason"]), method=method,
                          **extra, **self._stamp(t, method))

    def _point_error(self, t: Task, reason: str) -> PointResult:
        return PointResult(task=t.key, score=None, status="error", reason=reason, **self._stamp(t))

    # -- group rewards for online RL (unireward.judging.groups) ---------------------------------------------
    def group_reward(self, prompt: str, candidates: Sequence[Any], *, task: str | Task | None = None,
                     mode: str = "win-rate", both_orders: bool = True, media: Any = None, seed: int = 0,
                     variant: str | None = None):
        """One reward per candidate of one prompt's group: `win-rate` (all pairs, both orders), `bradley-terry`
        or `point` (expected score). Returns a `rewards.GroupReward`."""
        return self.group_reward_batch([GroupRequest(prompt, list(candidates), media)], task=task, mode=mode,
                                       both_orders=both_orders, seed=seed, variant=variant)[0]

    def group_reward_batch(self, groups: Sequence[Any], *, task: str | Task | None = None, mode: str = "win-rate",
                           both_orders: bool = True, seed: int = 0, variant: str | None = None) -> list:
        """`group_reward` over many groups (`rewards.GroupRequest`s), all their judgements in one batched call."""
        return group_rewards(self, groups, task=task, mode=mode, both_orders=both_orders, seed=seed,
                             variant=variant)


def _merge_orders(a: dict, b: dict) -> tuple[dict, dict]:
    """Both orders' dimensions, scores, category winners and reward in candidate 1's terms (b judged the
    swapped order): verdict dimensions kept where the orders agree, score pairs averaged, rewards averaged."""
    def back(pair):  # b's [s_for_shown_1, s_for_shown_2] -> [s_for_candidate_1, s_for_candidate_2]
        return None if pair is None else [pair[1], pair[0]]

    def mean_pair(x, y):
        if x is None or y is None:
            return x if y is None else y
        return [None if u is None or v is None else (u + v) / 2 for u, v in zip(x, y)]

    dims = {}
    for k, v in a["dims"].items():
        other = b["dims"].get(k)
        if isinstance(v, list) or isinstance(other, list):
            dims[k] = mean_pair(v, back(other))
        elif unswap(other) == v:
            dims[k] = v
    cats = None
    if a["cats"] is not None and b["cats"] is not None:
        cats = {k: v for k, v in a["cats"].items() if unswap(b["cats"].get(k)) == v}
    rewards = [r for r in (a["reward"], None if b["reward"] is None else 1 - b["reward"]) if r is not None]
    return dims, {"scores": mean_pair(a["scores"], back(b["scores"])), "category_winners": cats,
                  "reward": sum(rewards) / len(rewards) if rewards else None}


def _normalised(fmt, expected: float) -> float | None:
    """A released point format's reward for an expected score (its own mapping); None for unireward's."""
    normalise = getattr(fmt, "normalise", None)
    return normalise(expected) if normalise is not None else None


def _chunks(items: list, size: int, progress: bool, desc: str) -> Iterable[list]:
    chunks = [items[i: i + size] for i in range(0, len(items), size)] or [[]]
    if progress and len(chunks) > 1:
        from tqdm.auto import tqdm

        return tqdm(chunks, desc=desc, unit="batch")
    return chunks
