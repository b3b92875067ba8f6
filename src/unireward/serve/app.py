"""The ASGI app: native judge endpoints, OpenAI-compatible chat completions, health and metrics.

    POST /v1/rank          {"task", "prompt", "a", "b", "media"?, "both_orders"?, "dimensions"?, "id"?}
                           or {"task", ..options, "items": [{"prompt", "a", "b", "media"?, "id"?}, ...]}
    POST /v1/score         {"task", "prompt", "candidate", "media"?, "dimensions"?, "id"?}  (or "items")
    POST /v1/rank-group    {"task", "prompt", "candidates": [...], "media"?, "schedule"?, "both_orders"?,
                            "seed"?, "rounds"?}
    POST /v1/reward        group rewards for online RL: win rate, Bradley-Terry or point (see reward_api.py)
    POST /v1/chat/completions   OpenAI-compatible (see openai_api.py)
    GET  /v1/models, /health (no key needed), /metrics

Generation tasks take media candidates (`a`, `b`, `candidate`, `candidates`); understanding tasks take text
answers plus the `media` they are about; editing tasks take the edited images as candidates plus the source image
as `media` (or `source`). Media fields are described in inputs.py. Single requests answer
{"result": {...}}, batched ones {"results": [...]}; each result carries "cached": true|false. A single request
that is refused answers its HTTP error; in a batched one, a refused item (or one the judge fails on) answers
{"status": "error", "reason", "code"} in its place and the other items are judged. A request whose client leaves
is dropped (its queued work never runs); every request has `timeout_s` in all (HTTP 504 after).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from collections import defaultdict, deque
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers

from ..errors import MediaError, TaskError, UnirewardError
from ..judge import PairRequest, PointRequest, RewardModel
from .batcher import MicroBatcher, QueueFull, ShuttingDown
from .cache import ResultCache, cache_key
from .config import ServeConfig
from .engine import Engine
from .inputs import (Fetcher, RequestError, check_text, context_media, load, media_candidates, media_hash,
                     media_refusal, media_urls, raw_media)
from .openai_api import completion, parse_chat, to_chat_input

log = logging.getLogger("unireward.serve")
_SCHEDULES = ("auto", "round-robin", "sparse")
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_NESTING = re.compile(rb"[\[\]{}]")
CLIENT_GONE = 499  # nginx's "client closed request": recorded in /metrics, never seen by the client


class _Metrics:
    def __init__(self):
        self.started = time.time()
        self.requests: dict[str, int] = defaultdict(int)
        self.statuses: dict[str, int] = defaultdict(int)
        self.latency: dict[str, deque] = defaultdict(lambda: deque(maxlen=2000))

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests[endpoint] += 1
        self.statuses[str(status)] += 1
        if status < 400:
            self.latency[endpoint].append(seconds)

    def latency_summary(self) -> dict:
        out = {}
        for name, values in self.latency.items():
            v = sorted(values)
            if v:
                out[name] = {"p50_s": v[len(v) // 2], "p95_s": v[min(len(v) - 1, int(len(v) * 0.95))], "n": len(v)}
        return out


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    kind = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
            404: "not_found_error", 413: "request_too_large", 422: "invalid_request_error",
            429: "rate_limit_error", 503: "unavailable", 504: "timeout"}.get(status, "server_error")
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status,
                        headers=headers)


def failure(e: Exception) -> tuple[int, str]:
    """The HTTP status and message for an exception raised while judging one item or request."""
    if isinstance(e, RequestError):
        return e.status, e.message
    if isinstance(e, MediaError):
        refusal = media_refusal(e, "media")
        return refusal.status, refusal.message
    if isinstance(e, UnirewardError):  # bad task names and options
        return 422, str(e)
    if isinstance(e, ValueError):  # e.g. an input the model's processor refuses
        return 422, f"{type(e).__name__}: {e}"
    return 500, f"{type(e).__name__}: {e}"


def json_depth(body: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (strings skipped), without parsing it."""
    depth = deepest = 0
    for m in _JSON_NESTING.finditer(_JSON_STRING.sub(b"", body)):
        if m.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class _Guard:
    """Before any route: the API key (401) and the declared body size (413). After: one /metrics entry, under
    the route's path (any path that is no route counts as "other", so random paths cannot grow /metrics)."""

    def __init__(self, app, *, cfg: ServeConfig, metrics: _Metrics, routes):
        self.app, self.cfg, self.metrics, self.routes = app, cfg, metrics, routes
        self._key = cfg.api_key.encode("ascii") if cfg.api_key else None

    def refusal(self, path: str, headers: Headers) -> JSONResponse | None:
        if path != "/health" and self._key is not None:
            given = headers.get("authorization", "")
            given = given[7:] if given.lower().startswith("bearer ") else headers.get("x-api-key", "")
            if not hmac.compare_digest(given.encode("latin-1"), self._key):  # headers arrive as latin-1 text
                return error(401, "missing or wrong API key; send 'Authorization: Bearer <key>'")
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.cfg.max_request_bytes:
            return error(413, f"request body of {int(length):,} bytes is over the limit of "
                              f"{self.cfg.max_request_bytes:,} (max_request_bytes)")
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        path = scope["path"]
        label = path if path in self.routes() else "other"
        refused = self.refusal(path, Headers(scope=scope))
        if refused is not None:
            self.metrics.record(label, refused.status_code, 0.0)
            return await refused(scope, receive, send)
        status = 500

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.record(label, status, time.perf_counter() - start)


def create_app(rm: RewardModel, cfg: ServeConfig | None = None):
    cfg = cfg or ServeConfig()
    engine = Engine(rm)
    cache = ResultCache(cfg.cache_size)
    metrics = _Metrics()
    state: dict[str, Any] = {"batcher": None, "draining": False, "fetcher": None}

    @asynccontextmanager
    async def lifespan(app):
        batcher = MicroBatcher(engine, max_batch_size=cfg.max_batch_size, max_wait_s=cfg.max_wait_ms / 1000,
                               max_queue=cfg.max_queue, max_cost=cfg.max_pairs)
        batcher.start()
        state["batcher"], state["fetcher"] = batcher, Fetcher(cfg)
        try:
            yield
        finally:  # uvicorn has stopped taking connections and waited for in-flight requests; finish the queue
            state["draining"] = True
            state["fetcher"].close()
            await batcher.close()

    app = FastAPI(title="unireward", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.config = cfg
    app.state.cache = cache
    app.state.metrics = metrics
    app.state.serve_state = state
    routes: set[str] = set()

    def route_paths() -> set[str]:
        if not routes:
            routes.update(r.path for r in app.routes)
        return routes

    app.add_middleware(_Guard, cfg=cfg, metrics=metrics, routes=route_paths)

    def parse_json(body: bytes) -> Any:
        depth = json_depth(body)
        if depth > cfg.max_json_depth:
            raise RequestError(413, f"the JSON body nests {depth} levels deep, over the limit of "
                                    f"{cfg.max_json_depth} (max_json_depth)")
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RequestError(400, f"the body is not valid JSON ({e})") from None

    async def read_json(request: Request) -> Any:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > cfg.max_request_bytes:
                raise RequestError(413, f"request body is over the limit of {cfg.max_request_bytes:,} bytes "
                                        "(max_request_bytes)")
        if len(body) > 1 << 20:  # about 15 ms a megabyte: large bodies are parsed off the event loop
            return await asyncio.to_thread(parse_json, bytes(body))
        return parse_json(bytes(body))

    async def disconnected(request: Request) -> None:
        """Returns when the client has gone (once the body is read, the next ASGI message is the disconnect)."""
        while (await request.receive())["type"] != "http.disconnect":
            pass

    def handle(fn):
        """Read the body (within the deadline), then run `fn(request, body, started)` until it answers, its
        deadline passes (504) or its client leaves (dropped: its queued work is never run)."""
        async def wrapper(request: Request):
            started = time.perf_counter()
            work = gone = None
            try:
                body = await asyncio.wait_for(read_json(request), cfg.timeout_s)
                remaining = max(cfg.timeout_s - (time.perf_counter() - started), 0.001)
                work = asyncio.ensure_future(asyncio.wait_for(fn(request, body, started), remaining))
                gone = asyncio.ensure_future(disconnected(request))
                await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not work.done():
                    return JSONResponse({"error": {"message": "the client left", "code": CLIENT_GONE}},
                                        status_code=CLIENT_GONE)
                return work.result()
            except asyncio.CancelledError:  # shutdown: uvicorn's grace period ran out before this was judged
                return error(503, "the server is shutting down and dropped this request; send it again",
                             headers={"Retry-After": "1"})
            except QueueFull as e:
                return error(429, str(e), headers={"Retry-After": "1"})
            except ShuttingDown as e:
                return error(503, str(e), headers={"Retry-After": "1"})
            except asyncio.TimeoutError:
                return error(504, f"the request did not finish within {cfg.timeout_s:g} s (timeout_s)")
            except Exception as e:  # noqa: BLE001 - refusals, bad options, a bug or a backend failure: keep serving
                status, message = failure(e)
                if status >= 500:
                    log.error("request failed", exc_info=e)
                return error(status, message)
            finally:
                for task in (work, gone):
                    if task is not None and not task.done():
                        task.cancel()
        wrapper.__name__ = fn.__name__
        return wrapper

    def batcher() -> MicroBatcher:
        b = state["batcher"]
        if b is None or state["draining"]:
            raise ShuttingDown("the server is not accepting requests (starting or shutting down)")
        return b

    async def submit_all(keys: list[tuple], payloads: list[Any], started: float,
                         costs: list[int] | None = None) -> list[Any]:
        """Each payload's result, or the exception it alone failed with."""
        b = batcher()
        if b.depth + len(payloads) > cfg.max_queue:
            raise QueueFull(f"the queue is full ({b.depth} of {cfg.max_queue} requests); retry later")
        remaining = max(cfg.timeout_s - (time.perf_counter() - started), 0.001)
        costs = costs or [1] * len(payloads)
        out = await asyncio.gather(*(b.submit(k, p, remaining, c) for k, p, c in zip(keys, payloads, costs)),
                                   return_exceptions=True)
        for r in out:  # the request's own deadline or the server's state: not one item's failure
            if isinstance(r, (asyncio.TimeoutError, QueueFull, ShuttingDown, asyncio.CancelledError)):
                raise r
        return out

    async def fetch(values: list[Any]) -> dict[str, Any]:
        """The URL media among `values` (media fields), fetched before anything else (see inputs.Fetcher)."""
        batcher()  # not before start-up, nor while shutting down
        return await state["fetcher"].fetch_all(u for v in values for u in media_urls(v))

    def check_cost(cost: int, what: str) -> None:
        if cost > cfg.max_pairs:
            raise RequestError(413, f"{what} ask(s) for {cost:,} judged orders, over the limit of {cfg.max_pairs:,} "
                                    "per request (max_pairs); send fewer or smaller groups per request")

    # -- native judge endpoints ---------------------------------------------------------------------------------
    def task_of(body: dict, kind: str):
        from ..tasks import get_task

        name = body.get("task")
        if not isinstance(name, str):
            raise RequestError(422, "task is required, e.g. \"image-gen/pair\"")
        dims = body.get("dimensions", False)
        if not isinstance(dims, bool):
            raise RequestError(422, "dimensions must be true or false")
        try:
            t = get_task(name, dimensions=dims)  # the task by name, to say which endpoint it belongs to
            if t.kind != kind:
                raise RequestError(422, f"task {t.name} is a {t.kind} task; this endpoint takes */{kind} tasks")
            return rm.task(name, kind, dims)  # as the judge renders it (its family's prompt)
        except TaskError as e:
            raise RequestError(422, str(e)) from None

    def flag(body: dict, name: str, default=False) -> bool:
        v = body.get(name, default)
        if not isinstance(v, bool):
            raise RequestError(422, f"{name} must be true or false")
        return v

    def spec_of(t, item: Any, where: str, fields: list[str]) -> dict:
        """{"prompt", "cands": [(field, spec)], "media": spec|None, "id"} with texts checked."""
        if not isinstance(item, dict):
            raise RequestError(422, f"{where}must be an object" if where else "the body must be an object")
        prompt = check_text(item.get("prompt"), f"{where}prompt", cfg)
        cands = []
        for f in fields:
            if f == "candidates":
                values = item.get("candidates")
                if not isinstance(values, list) or len(values) < 2:
                    raise RequestError(422, f"{where}candidates must be a list of at least 2 candidates")
                if len(values) > cfg.max_items:
                    raise RequestError(413, f"{where}candidates: {len(values)} over the limit of {cfg.max_items} "
                                            "(max_items)")
                cands += [(f"{where}candidates[{i}]", v) for i, v in enumerate(values)]
            else:
                if f not in item:
                    raise RequestError(422, f"{where}{f} is required")
                cands.append((where + f, item[f]))
        media = context_media(t, item, where)
        if not media_candidates(t):
            cands = [(f, check_text(v, f, cfg)) for f, v in cands]
        rid = item.get("id")
        return {"prompt": prompt, "cands": cands, "media": media, "id": rid, "where": where}

    def per_item(step):
        """Run `step(t, spec, fetched)` on each spec; a refused item keeps its RequestError, the others go on."""
        def run(t, specs: list[dict], fetched: dict) -> None:
            for s in specs:
                if "error" not in s:
                    try:
                        step(t, s, fetched)
                    except RequestError as e:
                        s["error"] = e
                    except MediaError as e:  # e.g. a local path that vanished (hashing reads the file)
                        s["error"] = media_refusal(e, s["where"] + "media" if s["where"] else "media")
        return run

    def resolve(t, s: dict, fetched: dict) -> None:
        """In a thread: raw media (URLs already fetched) and its hash (no decoding yet)."""
        if media_candidates(t):
            s["raw"] = [raw_media(v, f, cfg, fetched) for f, v in s["cands"]]
            s["hashes"] = [media_hash(r) for r in s["raw"]]
        else:
            s["raw"] = [v for _, v in s["cands"]]
            s["hashes"] = list(s["raw"])
        if s["media"] is not None:
            s["media_raw"] = raw_media(s["media"], s["where"] + "media", cfg, fetched)
            s["hashes"].append(media_hash(s["media_raw"]))

    def decode(t, s: dict, fetched: dict) -> None:
        if media_candidates(t):
            s["loaded"] = [load(r, t.modality, f, cfg, rm.image_policy, rm.video_policy)
                           for r, (f, _) in zip(s["raw"], s["cands"])]
        else:
            s["loaded"] = s["raw"]
        s["media_loaded"] = None if s["media"] is None else load(s["media_raw"], t.modality, s["where"] + "media",
                                                                  cfg, rm.image_policy, rm.video_policy)

    async def judge(request: Request, body: Any, started: float, endpoint: str):
        from ..grouping import schedule_pairs

        if not isinstance(body, dict):
            raise RequestError(422, "the body must be a JSON object")
        t = task_of(body, "point" if endpoint == "score" else "pair")
        if endpoint == "rank":
            options: tuple = (flag(body, "both_orders"), t.answer.dimensions != ())
            fields = ["a", "b"]
        elif endpoint == "score":
            options = (t.answer.dimensions != (),)
            fields = ["candidate"]
        else:
            schedule = body.get("schedule", "auto")
            if schedule not in _SCHEDULES:
                raise RequestError(422, f"schedule must be one of {_SCHEDULES}")
            seed, rounds = body.get("seed", 0), body.get("rounds")
            if not isinstance(seed, int) or not (rounds is None or isinstance(rounds, int) and rounds > 0):
                raise RequestError(422, "seed must be an integer and rounds a positive integer")
            options = (schedule, flag(body, "both_orders"), seed, rounds)
            fields = ["candidates"]
        single = endpoint == "rank-group" or "items" not in body
        items = [body] if single else body["items"]
        if not isinstance(items, list) or not items:
            raise RequestError(422, "items must be a non-empty list")
        if len(items) > cfg.max_items:
            raise RequestError(413, f"{len(items)} items, over the limit of {cfg.max_items} per request (max_items)")
        specs = []
        for i, it in enumerate(items):  # in a batch, a refused item answers with its own error; the rest go on
            try:
                specs.append(spec_of(t, it, "" if single else f"items[{i}].", fields))
            except RequestError as e:
                specs.append({"error": e, "id": it.get("id") if isinstance(it, dict) else None})
        if endpoint == "rank-group":
            orders = 2 if options[1] else 1
            costs = [orders * len(schedule_pairs(len(s["cands"]), schedule, seed, rounds)) if "error" not in s
                     else 0 for s in specs]
        else:
            costs = [(2 if endpoint == "rank" and options[0] else 1) if "error" not in s else 0 for s in specs]
        check_cost(sum(costs), "the candidates" if endpoint == "rank-group" else f"{len(items)} item(s)")

        def refused() -> None:
            if single and "error" in specs[0]:
                raise specs[0]["error"]

        refused()
        ok = [s for s in specs if "error" not in s]
        fetched = await fetch([v for s in ok for v in ([v for _, v in s["cands"]] if media_candidates(t) else [])
                               + ([s["media"]] if s["media"] is not None else [])])
        await asyncio.to_thread(per_item(resolve), t, specs, fetched)
        refused()
        policy = (rm.video_policy if t.modality == "video" else rm.image_policy).to_dict()
        keys = [None if "error" in s else cache_key(endpoint, t.key, t.version, t.template_hash, options, policy,
                                                     rm.method, s["prompt"], s["hashes"]) for s in specs]
        results: list[Any] = [None if k is None else cache.get(k) for k in keys]
        await asyncio.to_thread(per_item(decode), t, [specs[i] for i, r in enumerate(results) if r is None], fetched)
        refused()
        for i, s in enumerate(specs):
            if "error" in s:
                results[i] = {"status": "error", "reason": s["error"].message, "code": s["error"].status}
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            todo = [specs[i] for i in missing]
            if endpoint == "rank":
                payloads: list[Any] = [PairRequest(s["prompt"], s["loaded"][0], s["loaded"][1], s["media_loaded"])
                                       for s in todo]
            elif endpoint == "score":
                payloads = [PointRequest(s["prompt"], s["loaded"][0], s["media_loaded"]) for s in todo]
            else:
                payloads = [(s["prompt"], s["loaded"], s["media_loaded"]) for s in todo]
            batch_key = (endpoint if endpoint != "rank-group" else "group", t.key) + options
            fresh = await submit_all([batch_key] * len(payloads), payloads, started, [costs[i] for i in missing])
            for i, r in zip(missing, fresh):
                if isinstance(r, Exception):  # this item failed alone (the others batched with it did not)
                    if single:
                        raise r
                    status, message = failure(r)
                    r = {"status": "error", "reason": f"items[{i}]: {message}", "code": status}
                elif r.get("status", "ok") != "error":  # errors may be transient; do not pin them
                    cache.put(keys[i], r)
                r["cached"] = False
                results[i] = r
        for i, r in enumerate(results):
            if i not in missing:
                r["cached"] = "error" not in specs[i]
            if specs[i]["id"] is not None:
                r["id"] = specs[i]["id"]
        return {"result": results[0]} if single else {"results": results}

    @app.post("/v1/rank")
    @handle
    async def rank(request: Request, body: Any, started: float):
        return await judge(request, body, started, "rank")

    @app.post("/v1/score")
    @handle
    async def score(request: Request, body: Any, started: float):
        return await judge(request, body, started, "score")

    @app.post("/v1/rank-group")
    @handle
    async def rank_group(request: Request, body: Any, started: float):
        return await judge(request, body, started, "rank-group")

    from .reward_api import add_reward_route  # POST /v1/reward: group rewards for online RL

    add_reward_route(app, rm, cfg, handle=handle, submit_all=submit_all, fetch=fetch, check_cost=check_cost)

    # -- OpenAI-compatible ----------------------------------------------------------------------------------
    @app.post("/v1/chat/completions")
    @handle
    async def chat_completions(request: Request, body: Any, started: float):
        parsed = parse_chat(body, cfg)
        fetched = await fetch([value[0] for kind, value in parsed["parts"] if kind != "text"])

        def decode_parts():
            return [(kind, value if kind == "text" else load(raw_media(value[0], value[1], cfg, fetched), kind,
                                                             value[1], cfg, rm.image_policy, rm.video_policy))
                    for kind, value in parsed["parts"]]

        chat_input = to_chat_input(await asyncio.to_thread(decode_parts))
        key = ("chat", parsed["prefix"], parsed["max_tokens"], parsed["top_logprobs"], parsed["stop"],
               parsed["include_stop"])
        (result,) = await submit_all([key], [chat_input], started)
        if isinstance(result, Exception):
            raise result
        return completion(result, cfg.served_model_name, parsed["top_logprobs"] is not None, parsed["warnings"])

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": cfg.served_model_name, "object": "model", "owned_by": "unireward",
                                            "created": int(metrics.started)}]}

    # -- operations -----------------------------------------------------------------------------------------
    @app.get("/health")
    async def health():
        b = state["batcher"]
        ok = b is not None and not state["draining"]
        return JSONResponse({"status": "ok" if ok else "unavailable", "queue": b.depth if b else 0},
                            status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics_endpoint():
        b = state["batcher"]
        stats = dict(b.stats) if b else {}
        batches = stats.get("batches", 0)
        return {
            "uptime_s": time.time() - metrics.started,
            "model": rm.backend.describe(),
            "requests": dict(metrics.requests), "statuses": dict(metrics.statuses),
            "queue_depth": b.depth if b else 0,
            "batches": batches, "batched_items": stats.get("items", 0),
            "mean_batch_size": stats.get("items", 0) / batches if batches else 0.0,
            "max_batch_size_seen": stats.get("max_batch", 0), "model_busy_s": stats.get("busy_s", 0.0),
            "dropped_items": stats.get("dropped", 0), "isolated_failures": stats.get("isolated", 0),
            "cache": {"size": len(cache), "hits": cache.hits, "misses": cache.misses},
            "latency": metrics.latency_summary(),
            "config": {"max_batch_size": cfg.max_batch_size, "max_wait_ms": cfg.max_wait_ms,
                       "max_queue": cfg.max_queue, "timeout_s": cfg.timeout_s, "max_pairs": cfg.max_pairs},
        }

    @app.exception_handler(404)
    async def not_found(request, exc):
        return error(404, f"no endpoint {request.method} {request.url.path}")

    @app.exception_handler(405)
    async def bad_method(request, exc):
        return error(405, f"{request.method} is not allowed on {request.url.path}")

    return app
