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
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from typing import Any

from ..rewards.group import MODES, GroupReward, GroupRequest, resolve_task
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


def add_reward_route(app, rm, cfg, *, handle, submit_all, fetch, check_cost) -> None:
    idem = _Idempotent(cfg.max_idempotency_keys)

    def parse(body: Any) -> tuple[Any, str, bool, int, list[dict], bool]:
        if not isinstance(body, dict):
            raise RequestError(422, "the body must be a JSON object")
        mode = body.get("mode", "win-rate")
        if mode not in MODES:
            raise RequestError(422, f"mode must be one of {', '.join(MODES)}")
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
            g["cost"] = group_cost(len(g["candidates"]), mode, both_orders, g["reference"] is not None)
        check_cost(sum(g["cost"] for g in checked), f"{len(checked)} group(s) of up to "
                                                    f"{max(len(g['candidates']) for g in checked)} candidates")
        return t, mode, both_orders, seed, checked, single

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

    async def answer(t, mode, both_orders, seed, groups, single, started):
        media_fields = []
        for g in groups:
            if media_candidates(t):  # (an understanding task's candidates and reference are texts)
                media_fields += [*g["candidates"], g["reference"]]
            media_fields.append(g["media"])
        fetched = await fetch([v for v in media_fields if v is not None])
        ready = await asyncio.to_thread(lambda: [decode(t, g, fetched) for g in groups])
        todo = [i for i, r in enumerate(ready) if isinstance(r, GroupRequest)]
        key = ("reward", t.key, mode, both_orders, seed)
        fresh = await submit_all([key] * len(todo), [ready[i] for i in todo], started,
                                 [groups[i]["cost"] for i in todo]) if todo else []
        results: list[dict] = []
        done = dict(zip(todo, fresh))
        for i, g in enumerate(groups):
            reason = ready[i]
            if i in done and not isinstance(done[i], Exception):
                results.append(done[i])
                continue
            if i in done:  # the judge failed on this group alone (the others batched with it were judged)
                e = done[i]
                reason = f"{g['where'] or 'the group'}: the judge could not judge it ({type(e).__name__}: {e})"
            results.append(GroupReward(task=t.key, mode=mode, rewards=[None] * len(g["candidates"]),
                                       status="error", reason=reason, id=g["id"]).to_dict())
        return {"result": results[0]} if single else {"results": results}

    @app.post("/v1/reward")
    @handle
    async def reward(request, body: Any, started: float):
        t, mode, both_orders, seed, groups, single = parse(body)
        key = request.headers.get("idempotency-key") or (body.get("idempotency_key") if isinstance(body, dict)
                                                         else None)
        if key is None:
            return await answer(t, mode, both_orders, seed, groups, single, started)
        if not isinstance(key, str) or not key:
            raise RequestError(422, "idempotency_key must be a non-empty string")
        if len(key) > cfg.max_key_chars:
            raise RequestError(413, f"the idempotency key has {len(key):,} characters, over the limit of "
                                    f"{cfg.max_key_chars} (max_key_chars)")
        body.pop("idempotency_key", None)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        out, replayed = await idem.run(key, digest, lambda: answer(t, mode, both_orders, seed, groups, single,
                                                                   started))
        return {**out, "replayed": replayed}
