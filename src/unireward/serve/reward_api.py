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
group whose media cannot be decoded gets its own error result; the other groups complete. A retry carrying the
same idempotency key gets the first answer (joining it while it still runs) without judging again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict
from typing import Any

from ..rewards.group import MODES, GroupReward, GroupRequest, resolve_task
from .inputs import RequestError, check_text, context_media, load, media_candidates, raw_media


def reward_batch(rm, key: tuple, payloads: list[GroupRequest]) -> list[dict]:
    """The engine's batch function for ("reward", task, mode, both_orders, seed) keys."""
    _, task, mode, both_orders, seed = key
    return [g.to_dict() for g in rm.group_reward_batch(payloads, task=task, mode=mode, both_orders=both_orders,
                                                       seed=seed)]


class _Idempotent:
    """Answers by idempotency key (LRU), with in-flight requests joined rather than judged twice."""

    def __init__(self, size: int):
        self.size = max(size, 1)
        self.entries: OrderedDict[str, tuple[str, asyncio.Future]] = OrderedDict()

    async def run(self, key: str, digest: str, make):
        hit = self.entries.get(key)
        if hit is not None:
            if hit[0] != digest:
                raise RequestError(422, f"idempotency key {key!r} was used for a different request")
            self.entries.move_to_end(key)
            return await asyncio.shield(hit[1]), True
        fut = asyncio.get_running_loop().create_future()
        self.entries[key] = (digest, fut)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        try:
            result = await make()
        except BaseException as e:
            self.entries.pop(key, None)  # failures are not pinned: a retry runs again
            fut.set_exception(e)
            fut.exception()  # mark retrieved
            raise
        fut.set_result(result)
        return result, False


def add_reward_route(app, rm, cfg, *, handle, read_json, submit_all) -> None:
    idem = _Idempotent(cfg.cache_size)

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
            raise RequestError(413, f"{len(groups)} groups, over the limit of {cfg.max_items} per request")
        return t, mode, both_orders, seed, [check_group(t, mode, g, "" if single else f"groups[{i}].")
                                            for i, g in enumerate(groups)], single

    def check_group(t, mode: str, g: Any, where: str) -> dict:
        if not isinstance(g, dict):
            raise RequestError(422, f"{where[:-1] or 'the group'} must be an object")
        prompt = check_text(g.get("prompt"), f"{where}prompt", cfg)
        cands = g.get("candidates")
        least = 1 if mode == "point" else 2
        if not isinstance(cands, list) or len(cands) < least:
            raise RequestError(422, f"{where}candidates must be a list of at least {least}")
        if len(cands) > cfg.max_items:
            raise RequestError(413, f"{where}candidates: {len(cands)} over the limit of {cfg.max_items}")
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

    def decode(t, g: dict) -> GroupRequest | str:
        """The group ready to judge, or the reason it cannot be (its own error, not the request's)."""
        def media(value, field):
            return load(raw_media(value, field, cfg), t.modality, field, cfg, rm.image_policy, rm.video_policy)

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
        ready = await asyncio.to_thread(lambda: [decode(t, g) for g in groups])
        todo = [i for i, r in enumerate(ready) if isinstance(r, GroupRequest)]
        key = ("reward", t.key, mode, both_orders, seed)
        fresh = await submit_all([key] * len(todo), [ready[i] for i in todo], started) if todo else []
        results: list[dict] = []
        done = dict(zip(todo, fresh))
        for i, g in enumerate(groups):
            if i in done:
                results.append(done[i])
            else:
                n = len(g["candidates"])
                results.append(GroupReward(task=t.key, mode=mode, rewards=[None] * n, status="error",
                                           reason=ready[i], id=g["id"]).to_dict())
        return {"result": results[0]} if single else {"results": results}

    @app.post("/v1/reward")
    @handle
    async def reward(request):
        started = time.perf_counter()
        body = await read_json(request)
        t, mode, both_orders, seed, groups, single = parse(body)
        key = request.headers.get("idempotency-key") or (body.get("idempotency_key") if isinstance(body, dict)
                                                         else None)
        if key is None:
            return await answer(t, mode, both_orders, seed, groups, single, started)
        if not isinstance(key, str) or not key:
            raise RequestError(422, "idempotency_key must be a non-empty string")
        body.pop("idempotency_key", None)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        out, replayed = await idem.run(key, digest, lambda: answer(t, mode, both_orders, seed, groups, single,
                                                                   started))
        return {**out, "replayed": replayed}
