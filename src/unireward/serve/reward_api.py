"""POST /v1/reward: group rewards for online RL trainers.

    {"task"?: "image-gen/pair", "mode"?: "win-rate" | "bradley-terry" | "point", "both_orders"?: true, "seed"?: 0,
     "idempotency_key"?: "step-12-rank-3",                       (or the header Idempotency-Key)
     "groups": [{"prompt", "candidates": [...], "media"?, "reference"?, "id"?}, ...]}   (or one group's fields)
 -> {"results": [{"rewards": [...], "details": [...], "pairs", "unparsed", "unparsed_orders", "order_agreement",
                  "vs_reference", "mean", "status", "reason", "id"}, ...]}     (or {"result": {...}} for one group)

Candidates are media for generation tasks, text answers (with the group's `media`) for understanding tasks and
edited images (with the source image as `media` or `source`) for editing tasks;
media fields follow inputs.py, under the server's path, URL, size and frame limits. The task defaults to
image-gen/pair (image-gen/point for mode "point"); a task of the other kind maps to its sibling. A `reference`
(pairwise modes) is judged against every candidate too: `vs_reference` is an absolute measure of progress. Each group is
one item of the micro-batcher, so concurrent groups (from one request or many) share one batched judge call. A
group whose media cannot be decoded, or that the judge fails on, gets its own error result; the other groups
(and other clients' groups batched with them) complete. A request asks for at most `max_pairs` judged orders
(a win-rate group of G candidates: G(G-1)/2 pairs, plus G against a reference, times 2 with both orders).
A retry carrying the same idempotency key (at most `max_key_chars` long; the last `max_idempotency_keys` keys are
remembered) gets the first answer, joining it while it still runs, without judging again; a keyed request goes on
when its client leaves, so that the retry finds it.

Several rewards in one call: a "rewards" spec (as `rewards.RewardSpec.from_dict` takes it) instead of "mode":

    {"rewards": {"judge": {"weight": 0.7, "mode": "win-rate"}, "pickscore": 0.3}, "groups": [...]}
 -> {"results": [{"rewards": {"judge": [...], "pickscore": [...]},          each reward's raw values
                  "normalised": {...},                                      its per-group (r - mean) / (std + eps)
                  "advantages": [...], "combined": [...],                   sum_k w_k * normalised_k; sum_k w_k * r_k
                  "terms": {"judge": {<the group reward>}, ...}, "status", "reason", "id"}, ...]}

A reward named "judge" (or naming a mode or task) is the served model's; a reward named after a scorer the server
was started with (`--scorer NAME[=MODEL]`, ServeConfig.scorers), or giving {"model": NAME}, is that scorer's (mode
"point" unless given), each loaded once at start-up and run one batch at a time. The body's task says how the
groups are read; a reward may name another task of the same kind of media.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
from collections import OrderedDict
from typing import Any

from ..rewards.group import MODES, GroupReward, GroupRequest, resolve_task
from ..rewards.spec import RewardTerm, group_advantages
from .inputs import RequestError, check_text, context_media, load, media_candidates, raw_media


def group_cost(n: int, mode: str, both_orders: bool, reference: bool) -> int:
    """Judged orders of one group of n candidates: n points, or every pair (and each against the reference)."""
    if mode == "point":
        return n
    return (n * (n - 1) // 2 + (n if reference else 0)) * (2 if both_orders else 1)


def reward_batch(rm, key: tuple, payloads: list[GroupRequest]) -> list[dict]:
    """The engine's batch function for ("reward", task, mode, both_orders, seed) keys."""
    _, task, mode, both_orders, seed = key
    return [g.to_dict() for g in rm.group_reward_batch(payloads, task=task, mode=mode, both_orders=both_orders,
                                                       seed=seed)]


class _Idempotent:
    """Answers by idempotency key (LRU of `size` keys), with in-flight requests joined rather than judged twice.
    The work runs as a task of its own: a caller that leaves does not cancel it, so a retry can collect it."""

    def __init__(self, size: int):
        self.size = size
        self.entries: OrderedDict[str, tuple[str, asyncio.Future]] = OrderedDict()

    async def run(self, key: str, digest: str, make):
        hit = self.entries.get(key)
        if hit is not None:
            if hit[0] != digest:
                raise RequestError(422, f"idempotency key {key!r} was used for a different request")
            self.entries.move_to_end(key)
            return await asyncio.shield(hit[1]), True
        task = asyncio.ensure_future(make())
        self.entries[key] = (digest, task)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)

        def forget_failure(t: asyncio.Future) -> None:  # failures are not pinned: a retry runs again
            if (t.cancelled() or t.exception() is not None) and self.entries.get(key, (None, None))[1] is t:
                del self.entries[key]

        task.add_done_callback(forget_failure)
        return await asyncio.shield(task), False


def load_scorers(cfg) -> dict[str, tuple[Any, threading.Lock]]:
    """The scorers of `cfg.scorers`, loaded once (name -> (RewardModel, the lock that runs it one batch at a time))."""
    from ..judge import RewardModel

    return {name: (RewardModel.load(model), threading.Lock()) for name, model in cfg.scorers.items()}


def spec_terms(rewards: Any, scorers: dict, body: dict) -> list[tuple[RewardTerm, str | None]]:
    """(term, scorer name or None for the served model) of a request's "rewards" spec."""
    if not isinstance(rewards, dict) or not rewards:
        raise RequestError(422, "rewards must be an object naming each reward, e.g. {\"judge\": 0.7, "
                                "\"pickscore\": 0.3}")
    out = []
    for name, v in rewards.items():
        kw = {"weight": v} if isinstance(v, (int, float)) and not isinstance(v, bool) else v
        if not isinstance(kw, dict):
            raise RequestError(422, f"rewards.{name} must be a weight or an object")
        kw = dict(kw)
        model = kw.pop("model", None) or (name if name in scorers else None)
        if model is None and name != "judge" and not {"mode", "task"} & set(kw):
            raise RequestError(422, f"rewards.{name}: no such scorer on this server (it runs "
                                    f"{', '.join(scorers) or 'none'}; start it with --scorer {name}=MODEL), and it "
                                    "names no judge mode or task")
        if model is not None and model not in scorers:
            raise RequestError(422, f"rewards.{name}: model {model!r} is not one of this server's scorers "
                                    f"({', '.join(scorers) or 'none'}; start it with --scorer NAME=MODEL)")
        unknown = set(kw) - {"weight", "mode", "task", "both_orders", "normalise"}
        if unknown:
            raise RequestError(422, f"rewards.{name}: unknown field(s) {sorted(unknown)}")
        default = "point" if model is not None and scorers[model][0].backend.is_scorer else body.get("mode",
                                                                                                    "win-rate")
        kw.setdefault("mode", default)
        kw.setdefault("both_orders", body.get("both_orders", True))
        try:
            term = RewardTerm(name, **kw)
            if term.task is not None:
                resolve_task(term.task, term.mode)
        except (ValueError, TypeError, KeyError) as e:
            raise RequestError(422, f"rewards.{name}: {e}") from None
        out.append((term, model))
    return out


def combine(terms: list, per_term: dict[str, dict], n: int, gid, eps: float = 1e-4) -> dict:
    """One group's answer: each reward's raw and normalised values, the weighted advantages and combined reward."""
    rewards = {t.name: per_term[t.name]["rewards"] for t, _ in terms}
    normalised = {t.name: group_advantages(rewards[t.name], [list(range(n))], eps=eps, normalise=t.normalise)
                  for t, _ in terms}
    advantages = [sum(t.weight * normalised[t.name][i] for t, _ in terms) for i in range(n)]
    combined = [None if any(rewards[t.name][i] is None for t, _ in terms)
                else sum(t.weight * rewards[t.name][i] for t, _ in terms) for i in range(n)]
    failed = [t.name for t, _ in terms if per_term[t.name]["status"] == "error"]
    return {"id": gid, "rewards": rewards, "normalised": normalised, "advantages": advantages, "combined": combined,
            "weights": {t.name: t.weight for t, _ in terms}, "terms": per_term,
            "status": "error" if len(failed) == len(terms) else "ok",
            "reason": "; ".join(f"{k}: {per_term[k]['reason']}" for k in failed) or None}


def add_reward_route(app, rm, cfg, *, handle, submit_all, fetch, check_cost) -> None:
    idem = _Idempotent(cfg.max_idempotency_keys)
    scorers = load_scorers(cfg)

    def parse(body: Any) -> tuple[Any, str, bool, int, list[dict], bool, list | None]:
        if not isinstance(body, dict):
            raise RequestError(422, "the body must be a JSON object")
        mode = body.get("mode", "win-rate")
        if mode not in MODES:
            raise RequestError(422, f"mode must be one of {', '.join(MODES)}")
        terms = spec_terms(body["rewards"], scorers, body) if "rewards" in body else None
        if terms and all(term.mode == "point" for term, _ in terms):
            mode = "point"  # the groups may hold a single candidate
        task = body.get("task")
        if task is not None and not isinstance(task, str):
            raise RequestError(422, "task must be a string, e.g. \"image-gen/pair\"")
        t = resolve_task(task, mode)  # TaskError -> 422
        both_orders, seed = body.get("both_orders", True), body.get("seed", 0)
        if not isinstance(both_orders, bool) or not isinstance(seed, int) or isinstance(seed, bool):
            raise RequestError(422, "both_orders must be true or false and seed an integer")
        single = "groups" not in body
        groups = [body] if single else body["groups"]
        if not isinstance(groups, list) or not groups:
            raise RequestError(422, "groups must be a non-empty list")
        if len(groups) > cfg.max_items:
            raise RequestError(413, f"{len(groups)} groups, over the limit of {cfg.max_items} per request "
                                    "(max_items)")
        checked = [check_group(t, mode, g, "" if single else f"groups[{i}].") for i, g in enumerate(groups)]
        for g in checked:
            ref = g["reference"] is not None
            g["cost"] = (sum(group_cost(len(g["candidates"]), term.mode, term.both_orders, ref) for term, _ in terms)
                         if terms else group_cost(len(g["candidates"]), mode, both_orders, ref))
        check_cost(sum(g["cost"] for g in checked), f"{len(checked)} group(s) of up to "
                                                    f"{max(len(g['candidates']) for g in checked)} candidates")
        return t, mode, both_orders, seed, checked, single, terms

    def check_group(t, mode: str, g: Any, where: str) -> dict:
        if not isinstance(g, dict):
            raise RequestError(422, f"{where[:-1] or 'the group'} must be an object")
        prompt = check_text(g.get("prompt"), f"{where}prompt", cfg)
        cands = g.get("candidates")
        least = 1 if mode == "point" else 2
        if not isinstance(cands, list) or len(cands) < least:
            raise RequestError(422, f"{where}candidates must be a list of at least {least}")
        if len(cands) > cfg.max_items:
            raise RequestError(413, f"{where}candidates: {len(cands)} over the limit of {cfg.max_items} (max_items)")
        media = context_media(t, g, where)
        if not media_candidates(t):
            cands = [check_text(c, f"{where}candidates[{i}]", cfg) for i, c in enumerate(cands)]
        ref = g.get("reference")
        if ref is not None and not media_candidates(t):
            ref = check_text(ref, f"{where}reference", cfg)
        gid = g.get("id")
        if gid is not None and not isinstance(gid, str):
            raise RequestError(422, f"{where}id must be a string")
        return {"prompt": prompt, "candidates": cands, "media": media, "id": gid, "where": where, "reference": ref}

    def decode(t, g: dict, fetched: dict) -> GroupRequest | str:
        """The group ready to judge, or the reason it cannot be (its own error, not the request's)."""
        def media(value, field):
            return load(raw_media(value, field, cfg, fetched), t.modality, field, cfg, rm.image_policy,
                        rm.video_policy)

        w, ref = g["where"], g["reference"]
        try:
            if media_candidates(t):  # edits: with their source image
                cands = [media(c, f"{w}candidates[{i}]") for i, c in enumerate(g["candidates"])]
                source = None if g["media"] is None else media(g["media"], f"{w}media")
                return GroupRequest(g["prompt"], cands, source, g["id"],
                                    None if ref is None else media(ref, f"{w}reference"))
            return GroupRequest(g["prompt"], list(g["candidates"]), media(g["media"], f"{w}media"), g["id"], ref)
        except RequestError as e:
            if e.status == 403:  # path and URL rules refuse the request, as on the other endpoints
                raise
            return e.message

    async def answer(t, mode, both_orders, seed, groups, single, started, terms=None):
        if terms:
            return await answer_spec(t, terms, seed, groups, single, started)
        ready = await decode_all(t, groups)
        todo = [i for i, r in enumerate(ready) if isinstance(r, GroupRequest)]
        key = ("reward", t.key, mode, both_orders, seed)
        fresh = await submit_all([key] * len(todo), [ready[i] for i in todo], started,
                                 [groups[i]["cost"] for i in todo]) if todo else []
        results: list[dict] = []
        done = dict(zip(todo, fresh))
        for i, g in enumerate(groups):
            reason = ready[i]
            if i in done and not isinstance(done[i], Exception):
                if done[i].get("status") == "error" and g["where"]:  # say which group of the request it is
                    done[i] = {**done[i], "reason": f"{g['where'].rstrip('.')}: {done[i]['reason']}"}
                results.append(done[i])
                continue
            if i in done:  # the judge failed on this group alone (the others batched with it were judged)
                e = done[i]
                reason = f"{g['where'] or 'the group'}: the judge could not judge it ({type(e).__name__}: {e})"
            results.append(GroupReward(task=t.key, mode=mode, rewards=[None] * len(g["candidates"]),
                                       status="error", reason=reason, id=g["id"]).to_dict())
        return {"result": results[0]} if single else {"results": results}

    async def decode_all(t, groups) -> list:
        """Each group ready to judge (URL media fetched first), or the reason it cannot be."""
        media_fields = []
        for g in groups:
            if media_candidates(t):  # (an understanding task's candidates and reference are texts)
                media_fields += [*g["candidates"], g["reference"]]
            media_fields.append(g["media"])
        fetched = await fetch([v for v in media_fields if v is not None])
        return await asyncio.to_thread(lambda: [decode(t, g, fetched) for g in groups])

    async def answer_spec(t, terms, seed, groups, single, started):
        """Each reward of the spec over every group (the served model's through the micro-batcher, each scorer in
        one batch under its lock), then each group's raw, normalised and combined values."""
        ready = await decode_all(t, groups)
        todo = [i for i, r in enumerate(ready) if isinstance(r, GroupRequest)]
        payloads = [ready[i] for i in todo]

        async def run_term(term, model):
            task = term.task or t.name
            if model is None:
                key = ("reward", resolve_task(task, term.mode).key, term.mode, term.both_orders, seed)
                costs = [group_cost(len(p.candidates), term.mode, term.both_orders, p.reference is not None)
                         for p in payloads]
                return await submit_all([key] * len(payloads), payloads, started, costs)
            scorer, lock = scorers[model]

            def run() -> list:
                with lock:
                    try:
                        return [g.to_dict() for g in scorer.group_reward_batch(
                            payloads, task=task, mode=term.mode, both_orders=term.both_orders, seed=seed)]
                    except Exception as e:  # noqa: BLE001 - this reward fails for these groups; the others answer
                        return [e] * len(payloads)
            return await asyncio.to_thread(run)

        outs = await asyncio.gather(*(run_term(term, model) for term, model in terms)) if todo else []
        results = []
        done = {i: n for n, i in enumerate(todo)}
        for i, g in enumerate(groups):
            n = len(g["candidates"])
            if i not in done:
                results.append({"id": g["id"], "rewards": None, "status": "error", "reason": ready[i]})
                continue
            per_term = {}
            for (term, _), out in zip(terms, outs):
                r = out[done[i]]
                if isinstance(r, Exception):
                    r = GroupReward(task=term.task or t.key, mode=term.mode, rewards=[None] * n, status="error",
                                    reason=f"{type(r).__name__}: {r}", id=g["id"]).to_dict()
                per_term[term.name] = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                                       for k, v in r.items()}
            results.append(combine(terms, per_term, n, g["id"]))
        return {"result": results[0]} if single else {"results": results}

    @app.post("/v1/reward")
    @handle
    async def reward(request, body: Any, started: float):
        t, mode, both_orders, seed, groups, single, terms = parse(body)
        key = request.headers.get("idempotency-key") or (body.get("idempotency_key") if isinstance(body, dict)
                                                         else None)
        if key is None:
            return await answer(t, mode, both_orders, seed, groups, single, started, terms)
        if not isinstance(key, str) or not key:
            raise RequestError(422, "idempotency_key must be a non-empty string")
        if len(key) > cfg.max_key_chars:
            raise RequestError(413, f"the idempotency key has {len(key):,} characters, over the limit of "
                                    f"{cfg.max_key_chars} (max_key_chars)")
        body.pop("idempotency_key", None)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        out, replayed = await idem.run(key, digest, lambda: answer(t, mode, both_orders, seed, groups, single,
                                                                   started, terms))
        return {**out, "replayed": replayed}
