"""Where group rewards come from, behind one interface, on ONE long-lived event loop.

    judge = connect(rm)                                      # an in-process RewardModel
    judge = connect("http://gpu1:8000", api_key="...")       # a remote `unireward serve` (POST /v1/reward)
    judge = connect("http://gpu1:8000/v1", kind="openai", served_model="UnifiedReward-qwen-7b")  # vLLM / SGLang
    judge.group_reward_batch(groups, task=..., mode=...)     # sync, from any thread
    await judge.agroup_reward_batch(groups, ...)             # async, from any event loop

Every request runs on one background event loop in a daemon thread, started once per process (never
`asyncio.run` per call, which closes the loop under pooled HTTP clients: "Event loop is closed"). Sync callers
(a flow_grpo thread pool, TRL's sync reward functions) block on a future; async callers (TRL's own daemon loop)
await it through `asyncio.wrap_future`, so the caller's loop never owns our clients. An in-process judge runs
its batches one at a time in a single worker thread (the model is not re-entrant).
"""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Sequence

from ..errors import UnirewardError
from .group import GroupRequest, GroupReward


class RewardClientError(UnirewardError):
    """A remote reward request failed as a whole (HTTP error, unreachable server)."""


class BackgroundLoop:
    """One asyncio loop in a daemon thread, shared by every client in the process."""

    _instance: "BackgroundLoop | None" = None
    _lock = threading.Lock()

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="unireward-rewards", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls) -> "BackgroundLoop":
        with cls._lock:
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = cls()
            return cls._instance

    def run(self, coro: Awaitable) -> Any:
        """Run `coro` on the background loop and wait for it (from any thread except the loop's own)."""
        if threading.current_thread() is self.thread:
            raise RuntimeError("BackgroundLoop.run called from its own loop; await the coroutine instead")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def arun(self, coro: Awaitable) -> Any:
        """Await `coro` run on the background loop, from any other event loop."""
        if asyncio.get_running_loop() is self.loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))


class _Judge:
    """The shared sync / async front: subclasses implement `_request` (a coroutine on the background loop)."""

    def group_reward_batch(self, groups: Sequence[GroupRequest], *, task: str | None = None, mode: str = "win-rate",
                           both_orders: bool = True, seed: int = 0) -> list[GroupReward]:
        return BackgroundLoop.get().run(self._request(list(groups), task, mode, both_orders, seed))

    async def agroup_reward_batch(self, groups: Sequence[GroupRequest], *, task: str | None = None,
                                  mode: str = "win-rate", both_orders: bool = True, seed: int = 0) -> list[GroupReward]:
        return await BackgroundLoop.get().arun(self._request(list(groups), task, mode, both_orders, seed))

    async def _request(self, groups, task, mode, both_orders, seed) -> list[GroupReward]:
        raise NotImplementedError


class LocalJudge(_Judge):
    """A RewardModel in this process (transformers, or the OpenAI backend talking to vLLM / SGLang)."""

    def __init__(self, rm):
        self.rm = rm
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unireward-judge")

    async def _request(self, groups, task, mode, both_orders, seed):
        def call():
            return self.rm.group_reward_batch(groups, task=task, mode=mode, both_orders=both_orders, seed=seed)

        return await asyncio.get_running_loop().run_in_executor(self._worker, call)


class RemoteJudge(_Judge):
    """A `unireward serve` server: POST {base}/v1/reward. Media travel inline (PNG data URLs) unless they are
    strings (paths under the server's allowed roots, or URLs when it allows them)."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = 600.0,
                 max_groups_per_request: int = 16):
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.max_groups = max_groups_per_request
        self._client = None  # an httpx.AsyncClient, created on (and bound to) the background loop

    def _http(self):
        import httpx

        if self._client is None:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=self.timeout_s)
        return self._client

    async def _request(self, groups, task, mode, both_orders, seed):
        chunks = [groups[i: i + self.max_groups] for i in range(0, len(groups), self.max_groups)]
        parts = await asyncio.gather(*(self._post(c, task, mode, both_orders, seed) for c in chunks))
        return [g for part in parts for g in part]

    async def _post(self, groups, task, mode, both_orders, seed) -> list[GroupReward]:
        body = {"mode": mode, "both_orders": both_orders, "seed": seed,
                "groups": [_group_json(g) for g in groups]}
        if task is not None:
            body["task"] = task
        try:
            r = await self._http().post("/v1/reward", json=body)
        except Exception as e:  # connection refused, timeouts: the whole request failed
            raise RewardClientError(f"reward server {self.base_url} unreachable: {type(e).__name__}: {e}") from e
        if r.status_code != 200:
            raise RewardClientError(f"reward server answered {r.status_code}: {r.text[:500]}")
        return [GroupReward.from_dict(d) for d in r.json()["results"]]


_LOCAL: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_LOCAL_LOCK = threading.Lock()


def connect(target, *, kind: str = "unireward", **kwargs) -> _Judge:
    """A judge client: a RewardModel (or a client) as is; an http(s) URL: a `unireward serve` server
    (kind="unireward") or an OpenAI-compatible endpoint (kind="openai", through the OpenAI backend); a path or
    registered name: a judge loaded in this process."""
    if isinstance(target, _Judge):
        return target
    from ..judge import RewardModel

    if isinstance(target, RewardModel):  # one worker per model, however many adapters share it
        with _LOCAL_LOCK:
            if target not in _LOCAL:
                _LOCAL[target] = LocalJudge(target)
            return _LOCAL[target]
    if isinstance(target, str) and target.startswith(("http://", "https://")) and kind == "unireward":
        return RemoteJudge(target, **kwargs)
    if kind == "openai":
        return LocalJudge(RewardModel.load(target, backend="openai", **kwargs))
    return LocalJudge(RewardModel.load(target, **kwargs))


def _group_json(g: GroupRequest) -> dict:
    d: dict[str, Any] = {"prompt": g.prompt, "candidates": [_media_json(c) for c in g.candidates]}
    if g.media is not None:
        d["media"] = _media_json(g.media)
    if g.id is not None:
        d["id"] = g.id
    if g.reference is not None:
        d["reference"] = _media_json(g.reference)
    return d


def _media_json(x: Any) -> Any:
    """Text answers and path/URL strings as they are; images as PNG data URLs; videos as frame lists."""
    import numpy as np
    from PIL import Image

    from ..media import Video

    if isinstance(x, str):
        return x
    if isinstance(x, np.ndarray):
        from ..media import load_image

        x = load_image(x)
    if isinstance(x, Image.Image):
        buf = io.BytesIO()
        x.convert("RGB").save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    if isinstance(x, Video):
        return {"frames": [_media_json(f) for f in x.frames]}
    if isinstance(x, (bytes, bytearray)):
        return {"base64": base64.b64encode(bytes(x)).decode()}
    raise TypeError(f"cannot send a {type(x).__name__} to the reward server; pass a PIL image, array, path or bytes")
