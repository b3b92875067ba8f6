"""RewardModel: the facade users hold. Ranks pairs, scores single candidates and ranks groups.

    rm = RewardModel.load("path/to/judge")                      # transformers, in process
    rm = RewardModel.load("http://127.0.0.1:8000/v1", backend="openai", model="judge")  # vLLM / SGLang / ours
    rm.rank("a red circle", "a.png", "b.png", task="image-gen/pair", both_orders=True)
    rm.score("What colour is it?", "Red.", task="image-und/point", media="scene.png")
    rm.rank_group("a red circle", ["1.png", "2.png", "3.png"], task="image-gen/pair")

Order swapping, tie handling and the choice between reading probabilities and generating live here only:
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

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from .backends.base import UNREADABLE, Backend, ChatInput
from .errors import MediaError, PromptTooLongError, TaskError
from .grouping import bradley_terry, schedule_pairs
from .models.registry import SIDECAR
from .results import GroupResult, PairResult, PointResult
from .tasks import TIE, Task, get_task

JUDGE_DEFAULTS_FILE = SIDECAR  # in a judge folder: {"family"?, "method"?, "reasoning"?, "max_new_tokens"?, ...}
THINK = "think+probs"  # the method recorded on results read after the judge's own reasoning


@dataclass
class PairRequest:
    prompt: str
    a: Any  # generation: media; understanding: answer text
    b: Any
    media: Any = None  # understanding: the image or video the answers are about
    id: str | None = None


@dataclass
class PointRequest:
    prompt: str
    candidate: Any
    media: Any = None
    id: str | None = None


@dataclass
class _Prepared:
    """A request with its media loaded, ready to render in either order."""

    prompt: str
    candidates: list[Any]
    context: Any = None
    error: str | None = None
    extra: dict = field(default_factory=dict)


def _unswap(w):
    return 3 - w if w in (1, 2) else w


def _key(w) -> str:
    return str(w)


class RewardModel:
    def __init__(self, backend: Backend, *, image_policy=None, video_policy=None, method: str = "auto",
                 max_new_tokens: int = 512, allow_urls: bool = False, family: str = "unireward",
                 variant: str | None = None, reasoning: bool | None = None):
        """`family`: whose prompts and answer formats the judge uses (unireward's own, or a released family:
        "1.0", "2.0", "think", "edit", "flex"); `variant`: a prompt variant of that family (e.g. Think's
        "qwen2.5"), used for every task that has it; `reasoning`: whether the judge writes reasoning before its
        verdict, which is then read after it ("think+probs"; None: as the task's format says)."""
        from .media import ImagePolicy, VideoPolicy
        from .tasks import list_families

        if method not in ("auto", "probs", "generate"):
            raise ValueError("method must be auto, probs or generate")
        if family not in list_families():
            raise ValueError(f"unknown family {family!r}; known: {', '.join(list_families())}")
        self.backend = backend
        self.family = family  # the prompt family of every task this judge renders
        self.variant = variant  # the family's prompt variant used when a call names none
        self.image_policy = image_policy or ImagePolicy()
        self.video_policy = video_policy or VideoPolicy()
        self.method = method
        self.max_new_tokens = max_new_tokens
        self.allow_urls = allow_urls
        self.reasoning = reasoning  # writes reasoning before its verdict; None: as the task's format says

    @classmethod
    def load(cls, model: str, *, backend: str = "hf", device: str | None = None, dtype: str | None = "auto",
             batch_size: int = 8, family: str | None = None, checkpoint: str | None = None,
             **kwargs) -> "RewardModel":
        """Load a judge. backend="hf": a short name from `unireward models`, a hub id or a local directory;
        backend="openai": a base URL (or several, comma-separated) of an OpenAI-compatible server, with
        `served_model=` naming the model there and `checkpoint=` (or a registered `served_model`) saying which
        registered checkpoint it runs.

        A registered checkpoint (by short name, hub id, or a local copy whose unireward.json, cache folder,
        config.json `_name_or_path` or folder name names it) is judged with its prompt family and run as its
        authors run it (chat template options, token budget, image and video policy); `family=` overrides the
        family; anything else keeps unireward's own templates. Explicit arguments win over registry defaults."""
        s = judge_settings(model, backend=backend, family=family, checkpoint=checkpoint, **kwargs)
        if backend == "hf":
            from .backends.hf import HFBackend

            b: Backend = HFBackend.load(s.model, device=device, dtype=dtype, batch_size=batch_size,
                                        **s.backend_kwargs)
        elif backend == "openai":
            from .backends.openai import OpenAIBackend

            b = OpenAIBackend(s.model, **s.backend_kwargs)
        else:
            raise ValueError(f"unknown backend {backend!r}; use hf or openai")
        return cls(b, family=s.family, **s.judge_kwargs)

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
        t = self._task(task, "pair", dimensions, template, variant)
        prepared = [self._prepare(t, r.prompt, [r.a, r.b], r.media) for r in requests]
        return self._rank_prepared(t, prepared, both_orders, progress)

    def score_batch(self, requests: Sequence[PointRequest], *, task: str | Task = "image-gen/point",
                    dimensions: bool = False, template: str | None = None, progress: bool = False,
                    variant: str | None = None) -> list[PointResult]:
        t = self._task(task, "point", dimensions, template, variant)
        prepared = [self._prepare(t, r.prompt, [r.candidate], r.media) for r in requests]
        start = time.perf_counter()
        ok = [i for i, p in enumerate(prepared) if p.error is None]
        inputs = [self._render(t, prepared[i], swap=False) for i in ok]
        results: list[PointResult | None] = [None] * len(prepared)
        for i, p in enumerate(prepared):
            if p.error is not None:
                results[i] = self._point_error(t, p.error)
        fmt = t.answer
        mode = self._mode(t)
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
                                                 method=mode, **self._stamp(t))
                        continue
                    values = fmt.values()
                    probs = {str(v): p for v, p in zip(values, row)}
                    best = values[max(range(len(row)), key=row.__getitem__)]
                    expected = sum(v * p for v, p in zip(values, row))
                    raw = before + fmt.choices()[best]
                    dims = t.parse(raw).dimensions if mode == THINK else {}  # lines the reasoning wrote
                    results[i] = PointResult(task=t.key, score=float(best), expected_score=expected,
                                             probs=probs, raw=raw, dimensions=dims, method=mode,
                                             family_reward=_normalised(fmt, expected), **self._stamp(t))
                else:
                    v = t.parse(out)
                    results[i] = PointResult(task=t.key, score=v.score, raw=out, dimensions=v.dimensions,
                                             status="ok" if v.parsed else "unparsed", reason=v.reason,
                                             method="generate", scores=v.scores,
                                             family_reward=v.reward if t.family != "unireward" else None,
                                             **self._stamp(t))
        elapsed = time.perf_counter() - start
        for r in results:
            r.latency_s = elapsed / max(len(results), 1)
        return results  # type: ignore[return-value]

    def rank_group(self, prompt: str, candidates: Sequence[Any], *, task: str | Task = "image-gen/pair",
                   media: Any = None, schedule: str = "auto", both_orders: bool = False, seed: int = 0,
                   rounds: int | None = None) -> GroupResult:
        """Rank N candidates by Bradley-Terry strengths fitted to pairwise judgements (probabilities when the
        backend gives them, else wins; ties count half; unparsed comparisons are left out and counted)."""
        t = self._task(task, "pair", False, None)
        n = len(candidates) if isinstance(candidates, (list, tuple)) else 0
        if n < 2:
            what = f"{n} candidate(s)" if isinstance(candidates, (list, tuple)) else type(candidates).__name__
            return GroupResult(task=t.key, ranking=[], strengths=[], status="error",
                               reason=f"rank_group needs a list of at least 2 candidates, got {what}")
        loaded = self._prepare(t, prompt, list(candidates), media, expected=n)
        if loaded.error is not None:
            return GroupResult(task=t.key, ranking=[], strengths=[], status="error", reason=loaded.error)
        pairs = schedule_pairs(n, schedule, seed=seed, rounds=rounds)
        prepared = [_Prepared(prompt, [loaded.candidates[i], loaded.candidates[j]], loaded.context, loaded.error)
                    for i, j in pairs]
        results = self._rank_prepared(t, prepared, both_orders, progress=False)
        outcomes, comparisons, unparsed = [], [], 0
        for (i, j), r in zip(pairs, results):
            s = r.p_first if r.p_first is not None else {1: 1.0, 2: 0.0, TIE: 0.5}.get(r.winner)
            comparisons.append({"i": i, "j": j, "winner": r.winner, "p_first": r.p_first, "status": r.status})
            if s is None:
                unparsed += 1
                continue
            outcomes.append((i, j, s))
        strengths = bradley_terry(n, outcomes)
        ranking = sorted(range(n), key=lambda k: -strengths[k])
        used = "round-robin" if schedule == "auto" and n <= 8 else ("sparse" if schedule == "auto" else schedule)
        return GroupResult(task=t.key, ranking=ranking, strengths=strengths, comparisons=comparisons,
                           schedule=used, unparsed=unparsed)

    # -- internals -------------------------------------------------------------------------------------------
    def _task(self, task, kind: str, dimensions, template, variant: str | None = None) -> Task:
        if variant is None and self.variant is not None and not isinstance(task, Task):
            from .tasks import family_tasks

            # the model's variant (e.g. Think "qwen2.5") where this task has it, else the family's default
            if self.variant in family_tasks(self.family).get(str(task).partition("+")[0], []):
                variant = self.variant
        t = get_task(task, family=self.family, variant=variant, dimensions=dimensions, template=template)
        if t.kind != kind:
            raise TaskError(f"task {t.name} is a {t.kind} task; use a */{kind} task here")
        return t

    def _mode(self, t: Task) -> str:
        """"probs", THINK or "generate" for this task (see the module docstring); refuses probabilities that a
        reasoning judge cannot give."""
        fmt = t.answer
        if self.method == "generate":
            return "generate"
        readable = getattr(fmt, "readable", True) and not fmt.dimensions
        can_read = readable and bool(self.backend.supports_probs)
        always_reasons = bool(getattr(fmt, "reasons_first", False))
        if not (self.reasoning or always_reasons):
            return "probs" if can_read else "generate"
        stop = getattr(fmt, "reasoning_stop", None)
        if can_read and stop and self.reasoning is not False:
            return THINK
        if self.method == "auto":
            return "generate"
        why = ("reasoning=False was asked" if self.reasoning is False else
               f"the {self.backend.name} backend reads no token probabilities" if not self.backend.supports_probs
               else "its verdict is not a choice that probabilities can be read for" if not readable
               else "its format names no point where the reasoning stops")
        raise TaskError(f"this judge reasons before its verdict ({t.name}) and {why}: its probabilities cannot be "
                        "read after its reasoning, and reading them right after the prompt would skip the "
                        "reasoning. Use method='generate' (or 'auto') to let it write and parse its verdict.")

    def _reading(self, t: Task, out, mode: str) -> tuple[list[float] | None, str, str | None]:
        """(choice probabilities or None, the text before the choice, why not read) of a probs / THINK output."""
        if mode == THINK:
            return out.probs, out.text, out.reason
        return out, t.answer.prefix, None if out is not None else UNREADABLE

    def _stamp(self, t: Task) -> dict:
        policy = self.video_policy if t.modality == "video" else self.image_policy
        return {"task_version": t.version, "template_hash": t.template_hash, "media_policy": policy.to_dict(),
                "family": t.family, "variant": t.variant}

    def _load(self, t: Task, src: Any) -> Any:
        import dataclasses

        from .media import load_media

        video_policy = self.video_policy
        if t.video_frames and (video_policy.num_frames != t.video_frames or video_policy.fps is not None):
            # the family's script sends exactly this many frames per video
            video_policy = dataclasses.replace(video_policy, num_frames=t.video_frames, fps=None,
                                               max_frames=max(video_policy.max_frames, t.video_frames))
        return load_media(src, t.modality, image_policy=self.image_policy, video_policy=video_policy,
                          allow_urls=self.allow_urls)

    def _prepare(self, t: Task, prompt: str, candidates: list, media: Any, expected: int | None = None) -> _Prepared:
        problem = input_problem(t, prompt, candidates)
        if problem:
            return _Prepared(prompt, list(candidates), error=problem)
        try:
            if t.domain == "gen":
                if media is not None:
                    raise TaskError(f"task {t.name} judges generated media: pass candidates, not `media`")
                return _Prepared(prompt, [self._load(t, c) for c in candidates])
            if t.domain == "edit":
                shows_source = t.shows is None or 0 in t.shows
                if media is None and shows_source:
                    raise TaskError(f"task {t.name} needs the source image that was edited (`media=`)")
                source = self._load(t, media) if media is not None and shows_source else None
                return _Prepared(prompt, [self._load(t, c) for c in candidates], context=source)
            if media is None:
                raise TaskError(f"task {t.name} needs the {t.modality} the answers are about (`media=`)")
            return _Prepared(prompt, [str(c) for c in candidates], context=self._load(t, media))
        except (MediaError, TaskError) as e:
            if isinstance(e, TaskError) and "needs" not in str(e) and "pass candidates" not in str(e):
                raise
            return _Prepared(prompt, list(candidates), error=str(e))

    def _render(self, t: Task, p: _Prepared, swap: bool) -> ChatInput:
        cands = p.candidates[::-1] if swap else p.candidates
        if t.domain == "gen":
            media, parts = cands, t.render(p.prompt, num_media=len(cands))
        elif t.domain == "edit":  # media 0 is the source image, 1..k the edited candidates
            media = [p.context, *cands]
            parts = t.render(p.prompt, num_media=len(media))
        else:
            media, parts = [p.context], t.render(p.prompt, answers=cands)
        out: list[Any] = []
        for x in parts:
            if isinstance(x, str):
                out.append(x)
            elif t.video_frames and hasattr(media[x], "frames"):  # a video sent as its frames, as images
                out.extend(media[x].frames)
            else:
                out.append(media[x])
        return ChatInput(out)

    def _run(self, t: Task, inputs: list[ChatInput], mode: str) -> list:
        """Run one request type over `inputs`; a failing batch is retried one by one so one bad item
        (e.g. a prompt over the context) does not take the others down."""
        fmt = t.answer
        choices = list(fmt.choices().values())

        def call(xs):
            if mode == "probs":
                return self.backend.choice_probs(xs, fmt.prefix, choices)
            if mode == THINK:
                return self.backend.think_then_read(xs, fmt.reasoning_stop, choices, self.max_new_tokens)
            stop = [fmt.prefix + c for c in choices] if t.is_pair else None
            return self.backend.generate(xs, max_new_tokens=self.max_new_tokens, stop=stop)

        if not inputs:
            return []
        try:
            return list(call(inputs))
        except PromptTooLongError:
            out = []
            for x in inputs:
                try:
                    out.append(call([x])[0])
                except PromptTooLongError as e:
                    out.append(e)
            return out

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
            probs = {_key(k): p for k, p in zip(keys, row)}
            probs.setdefault("tie", 0.0)
            winner = keys[max(range(len(row)), key=row.__getitem__)]
            return {"winner": winner, "status": "ok", "reason": None, "probs": probs, "dims": {},
                    "raw": before + choices[winner], "scores": None, "cats": None,
                    "reward": probs.get("1", 0.0) + 0.5 * probs.get("tie", 0.0)}
        v = t.parse(out)
        return {"winner": v.winner, "status": "ok" if v.parsed else "unparsed", "reason": v.reason, "raw": out,
                "probs": None, "dims": v.dimensions, "scores": v.scores, "cats": v.category_winners,
                "reward": v.reward if v.parsed else None}

    def _rank_prepared(self, t: Task, prepared: list[_Prepared], both_orders: bool, progress: bool) -> list[PairResult]:
        start = time.perf_counter()
        mode = self._mode(t)
        ok = [i for i, p in enumerate(prepared) if p.error is None]
        orders = [False, True] if both_orders else [False]
        jobs = [(i, swap) for i in ok for swap in orders]
        verdicts: dict[tuple[int, bool], dict] = {}
        step = 256 if progress else max(len(jobs), 1)
        for chunk in _chunks(jobs, step, progress, "ranking"):
            outs = self._run(t, [self._render(t, prepared[i], swap) for i, swap in chunk], mode)
            for job, out in zip(chunk, outs):
                verdicts[job] = self._verdict(t, out, mode)
        results = []
        for i, p in enumerate(prepared):
            if p.error is not None:
                results.append(PairResult(task=t.key, winner=None, status="error", reason=p.error, **self._stamp(t)))
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
                              category_winners=a["cats"], reward=a["reward"], **self._stamp(t))
        wa, wb = a["winner"], _unswap(b["winner"])
        raw = [a["raw"], b["raw"]]
        dims, extra = _merge_orders(a, b)
        if a["probs"] and b["probs"]:
            pa, pb = a["probs"], b["probs"]
            probs = {"1": (pa["1"] + pb["2"]) / 2, "2": (pa["2"] + pb["1"]) / 2, "tie": (pa["tie"] + pb["tie"]) / 2}
            keys = {"1": 1, "2": 2, "tie": TIE}
            winner = keys[max(probs, key=probs.get)]
            return PairResult(task=t.key, winner=winner, probs=probs, consistent=wa == wb, raw=raw, dimensions=dims,
                              method=method, **{**extra, "reward": probs["1"] + 0.5 * probs["tie"]},
                              **self._stamp(t))
        if wa is not None and wb is not None:
            winner, consistent = (wa, True) if wa == wb else (TIE, False)
            return PairResult(task=t.key, winner=winner, consistent=consistent, raw=raw, dimensions=dims,
                              method=method, **extra, **self._stamp(t))
        if wa is None and wb is None:
            return PairResult(task=t.key, winner=None, raw=raw, status="unparsed" if "error" not in
                              (a["status"], b["status"]) else "error", reason=a["reason"] or b["reason"],
                              method=method, **self._stamp(t))
        return PairResult(task=t.key, winner=wa if wa is not None else wb, consistent=None, raw=raw, dimensions=dims,
                          reason="one order did not parse: " + str(a["reason"] or b["reason"]), method=method,
                          **extra, **self._stamp(t))

    def _point_error(self, t: Task, reason: str) -> PointResult:
        return PointResult(task=t.key, score=None, status="error", reason=reason, **self._stamp(t))

    # -- group rewards for online RL (unireward.rewards.group) ----------------------------------------------
    def group_reward(self, prompt: str, candidates: Sequence[Any], *, task: str | Task | None = None,
                     mode: str = "win-rate", both_orders: bool = True, media: Any = None, seed: int = 0,
                     variant: str | None = None):
        """One reward per candidate of one prompt's group: `win-rate` (all pairs, both orders), `bradley-terry`
        or `point` (expected score). Returns a `rewards.GroupReward`."""
        from .rewards.group import GroupRequest

        return self.group_reward_batch([GroupRequest(prompt, list(candidates), media)], task=task, mode=mode,
                                       both_orders=both_orders, seed=seed, variant=variant)[0]

    def group_reward_batch(self, groups: Sequence[Any], *, task: str | Task | None = None, mode: str = "win-rate",
                           both_orders: bool = True, seed: int = 0, variant: str | None = None) -> list:
        """`group_reward` over many groups (`rewards.GroupRequest`s), all their judgements in one batched call."""
        from .rewards.group import group_rewards

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
        elif _unswap(other) == v:
            dims[k] = v
    cats = None
    if a["cats"] is not None and b["cats"] is not None:
        cats = {k: v for k, v in a["cats"].items() if _unswap(b["cats"].get(k)) == v}
    rewards = [r for r in (a["reward"], None if b["reward"] is None else 1 - b["reward"]) if r is not None]
    return dims, {"scores": mean_pair(a["scores"], back(b["scores"])), "category_winners": cats,
                  "reward": sum(rewards) / len(rewards) if rewards else None}


def _normalised(fmt, expected: float) -> float | None:
    """A released point format's reward for an expected score (its own mapping); None for unireward's."""
    normalise = getattr(fmt, "normalise", None)
    return normalise(expected) if normalise is not None else None


_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: Any, what: str, allow_empty: bool = False) -> str | None:
    """Why `value` cannot be given to the judge as text (None when it can): missing, not a string, empty, or
    holding a lone surrogate (e.g. bytes decoded with errors="surrogateescape"), which no tokenizer encodes."""
    if value is None:
        return f"{what} is missing"
    if not isinstance(value, str):
        return f"{what} must be a string, got {type(value).__name__}"
    if not allow_empty and not value.strip():
        return f"{what} is empty"
    m = _SURROGATE.search(value)
    if m:
        return (f"{what} holds a lone surrogate ({ascii(m.group())} at character {m.start()}), which is not valid "
                "Unicode text; decode its source bytes properly (e.g. errors='replace') and send it again")
    return None


def input_problem(t: Task, prompt: Any, candidates: Sequence[Any]) -> str | None:
    """The first problem of a request's prompt and candidates that no model could judge, or None."""
    problem = text_problem(prompt, "prompt")
    if problem:
        return problem
    names = ["a", "b"] if len(candidates) == 2 else [str(i) for i in range(len(candidates))]
    for name, c in zip(names, candidates):
        what = f"candidate {name}"
        if t.domain == "und":
            problem = text_problem(c, f"{what} (an answer)", allow_empty=True)
        elif c is None:
            problem = f"{what} is missing"
        if problem:
            return problem
    return None

@dataclass
class JudgeSettings:
    """What `RewardModel.load` resolved: the model to open, its registry entry, and the arguments of the judge
    and of the backend (`unireward prompt` uses it to show a judge's requests without loading weights)."""

    model: str
    spec: Any  # models.registry.ModelSpec | None
    family: str
    judge_kwargs: dict
    backend_kwargs: dict


_JUDGE_KEYS = ("image_policy", "video_policy", "method", "max_new_tokens", "allow_urls", "variant", "reasoning")


def judge_settings(model: str, *, backend: str = "hf", family: str | None = None, checkpoint: str | None = None,
                   **kwargs) -> JudgeSettings:
    """Registry defaults, then the model folder's unireward.json, then explicit (non-None) arguments."""
    from .models.registry import DEFAULT_FAMILY, lookup, resolve

    if backend == "openai":
        spec = resolve(checkpoint) if checkpoint else resolve(kwargs.get("served_model") or kwargs.get("model") or "")
        sidecar: dict = {}
    else:
        spec, sidecar = lookup(checkpoint or model)
        if spec is not None and model.lower() in (spec.name.lower(), spec.checkpoint.lower()):
            model = spec.checkpoint
    if checkpoint and spec is None:
        raise TaskError(f"checkpoint {checkpoint!r} is not registered; see `unireward models`")
    defaults: dict[str, Any] = {"family": DEFAULT_FAMILY}
    if spec is not None:
        defaults.update(family=spec.family, variant=spec.variant, method=spec.method,
                        max_new_tokens=spec.max_new_tokens, image_policy=spec.image_policy(),
                        video_policy=spec.video_policy(), chat_template_kwargs=dict(spec.chat_template_kwargs))
        if backend == "openai":
            defaults["image_format"] = spec.request_image_format
    defaults.update({k: v for k, v in sidecar.items() if k in ("family", "variant", "method", "max_new_tokens",
                                                                 "chat_template_kwargs", "reasoning")})
    if family is not None and family != defaults["family"]:
        from .tasks import list_families

        if family not in list_families():
            raise TaskError(f"unknown family {family!r}; known: {', '.join(list_families())}")
        defaults.update(family=family, variant=None)  # another family: its own default prompts
    if backend == "openai" and defaults["family"] != DEFAULT_FAMILY:
        defaults.setdefault("image_format", "jpeg")  # the released judges' client sends JPEG (quality 95)
    for key, value in defaults.items():
        if key != "family" and kwargs.get(key) is None and value is not None:
            kwargs[key] = value
    judge_kwargs = {k: kwargs.pop(k) for k in _JUDGE_KEYS if k in kwargs}
    return JudgeSettings(model=model, spec=spec, family=defaults["family"],
                         judge_kwargs={k: v for k, v in judge_kwargs.items() if v is not None},
                         backend_kwargs={k: v for k, v in kwargs.items() if v is not None})


def _chunks(items: list, size: int, progress: bool, desc: str) -> Iterable[list]:
    chunks = [items[i: i + size] for i in range(0, len(items), size)] or [[]]
    if progress and len(chunks) > 1:
        from tqdm.auto import tqdm

        return tqdm(chunks, desc=desc, unit="batch")
    return chunks
