"""Dynamic micro-batching: concurrent requests with the same key (task and options) share one model call.

The event loop only queues and dispatches; each micro-batch runs in a single worker thread (the model is not
re-entrant, and one thread keeps the loop responsive). A batch is dispatched when it is full
(`max_batch_size`) or when its oldest request has waited `max_wait_s`; requests that arrive while a batch runs
are batched at once when it finishes. The queue is bounded (`QueueFull` -> HTTP 429), each request has a
deadline (`asyncio.TimeoutError` -> HTTP 504; a request that times out while queued is dropped, never run),
and `close()` finishes all accepted work before returning.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable


class QueueFull(Exception):
    pass


class ShuttingDown(Exception):
    pass


@dataclass
class _Item:
    payload: Any
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)


class MicroBatcher:
    def __init__(self, run_batch: Callable[[Hashable, list[Any]], list[Any]], *, max_batch_size: int = 32,
                 max_wait_s: float = 0.005, max_queue: int = 256):
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._groups: OrderedDict[Hashable, list[_Item]] = OrderedDict()
        self._pending = 0
        self._running = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closing = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unireward-batch")
        self.stats = {"batches": 0, "items": 0, "max_batch": 0, "busy_s": 0.0}

    @property
    def depth(self) -> int:
        """Requests queued or running."""
        return self._pending + self._running

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def submit(self, key: Hashable, payload: Any, timeout: float | None = None) -> Any:
        if self._closing:
            raise ShuttingDown("the server is shutting down")
        if self.depth >= self.max_queue:
            raise QueueFull(f"the queue is full ({self.max_queue} requests); retry later")
        item = _Item(payload, asyncio.get_running_loop().create_future())
        self._groups.setdefault(key, []).append(item)
        self._pending += 1
        self._wakeup.set()
        try:
            return await asyncio.wait_for(asyncio.shield(item.future), timeout)
        except asyncio.TimeoutError:
            group = self._groups.get(key)
            if group is not None and item in group:  # still queued: drop it so it never runs
                group.remove(item)
                self._pending -= 1
                if not group:
                    del self._groups[key]
            raise

    async def close(self) -> None:
        """Stop accepting work, finish everything accepted, stop the worker."""
        self._closing = True
        if self._task is not None:
            self._wakeup.set()
            await self._task
        self._executor.shutdown(wait=True)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._groups:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            key, items = next(iter(self._groups.items()))  # the group whose oldest request waited longest
            wait = items[0].enqueued + self.max_wait_s - time.monotonic()
            if len(items) < self.max_batch_size and wait > 0 and not self._closing:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), wait)
                except asyncio.TimeoutError:
                    pass
                continue
            batch, rest = items[: self.max_batch_size], items[self.max_batch_size:]
            del self._groups[key]
            if rest:  # back of the line, so that one busy key cannot starve the others
                self._groups[key] = rest
            self._pending -= len(batch)
            self._running = len(batch)
            start = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self.run_batch, key,
                                                     [i.payload for i in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(batch)} items")
            except Exception as e:  # the whole batch failed: every caller gets the error
                results = [e] * len(batch)
            finally:
                self._running = 0
            self.stats["busy_s"] += time.perf_counter() - start
            self.stats["batches"] += 1
            self.stats["items"] += len(batch)
            self.stats["max_batch"] = max(self.stats["max_batch"], len(batch))
            for item, result in zip(batch, results):
                if item.future.done():
                    continue
                if isinstance(result, Exception):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)
