"""Dynamic micro-batching: concurrent requests with the same key (task and options) share one model call.

The event loop only queues and dispatches; each micro-batch runs in a single worker thread (the model is not
re-entrant, and one thread keeps the loop responsive). A batch is dispatched when it is full (`max_batch_size`
items, or `max_cost` judged orders: one model call is bounded however large the requests) or when its oldest
request has waited `max_wait_s`; requests that arrive while a batch runs are batched at once when it finishes.

Isolation: a batch whose call raises is split in halves and each half run again, down to single items, so the
item at fault gets its own exception and every other request batched with it (from any client) its result.
The queue is bounded (`QueueFull` -> HTTP 429). A request that leaves the queue before it runs (its deadline
passed: `asyncio.TimeoutError` -> HTTP 504; its client left or the server cancelled it) is dropped, never run.
`close()` finishes the work still queued (by then, at shutdown, only requests still waiting for an answer).
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
    cost: int = 1
    enqueued: float = field(default_factory=time.monotonic)


def run_isolated(run: Callable[[list[Any]], list[Any]], payloads: list[Any]) -> list[Any]:
    """`run(payloads)`; if it raises (or answers the wrong number of results), each half is run alone, down to
    single items: the result list holds the exception of each item that fails alone, and every other result."""
    try:
        results = list(run(payloads))
        if len(results) != len(payloads):
            raise RuntimeError(f"the batch function returned {len(results)} results for {len(payloads)} items")
        return results
    except Exception as e:  # noqa: BLE001 - find the item(s) at fault
        if len(payloads) == 1:
            return [e]
    mid = len(payloads) // 2
    return run_isolated(run, payloads[:mid]) + run_isolated(run, payloads[mid:])


class MicroBatcher:
    def __init__(self, run_batch: Callable[[Hashable, list[Any]], list[Any]], *, max_batch_size: int = 32,
                 max_wait_s: float = 0.005, max_queue: int = 256, max_cost: int | None = None):
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.max_cost = max_cost
        self._groups: OrderedDict[Hashable, list[_Item]] = OrderedDict()
        self._pending = 0
        self._running = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closing = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unireward-batch")
        self.stats = {"batches": 0, "items": 0, "max_batch": 0, "busy_s": 0.0, "dropped": 0, "isolated": 0}

    @property
    def depth(self) -> int:
        """Requests queued or running."""
        return self._pending + self._running

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def submit(self, key: Hashable, payload: Any, timeout: float | None = None, cost: int = 1) -> Any:
        """The item's result. `cost`: the judged orders it asks for (a batch holds at most `max_cost` of them,
        or one item). On a timeout or a cancellation (the client left) a still queued item is dropped."""
        if self._closing:
            raise ShuttingDown("the server is shutting down")
        if self.depth >= self.max_queue:
            raise QueueFull(f"the queue is full ({self.max_queue} requests); retry later")
        item = _Item(payload, asyncio.get_running_loop().create_future(), cost)
        self._groups.setdefault(key, []).append(item)
        self._pending += 1
        self._wakeup.set()
        try:
            return await asyncio.wait_for(asyncio.shield(item.future), timeout)
        except BaseException:  # timed out or cancelled: if it has not run yet, it never will
            group = self._groups.get(key)
            if group is not None and item in group:
                group.remove(item)
                self._pending -= 1
                self.stats["dropped"] += 1
                if not group:
                    del self._groups[key]
            raise

    async def close(self) -> None:
        """Stop accepting work, finish everything still queued, stop the worker."""
        self._closing = True
        if self._task is not None:
            self._wakeup.set()
            await self._task
        self._executor.shutdown(wait=True)

    def _take(self, items: list[_Item]) -> int:
        """How many of a group's items (oldest first) the next batch holds: at most max_batch_size, and at most
        max_cost judged orders unless a single item asks for more on its own."""
        n, cost = 0, 0
        for it in items[: self.max_batch_size]:
            if n and self.max_cost is not None and cost + it.cost > self.max_cost:
                break
            n, cost = n + 1, cost + it.cost
        return n

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
            take = self._take(items)
            wait = items[0].enqueued + self.max_wait_s - time.monotonic()
            if take == len(items) and len(items) < self.max_batch_size and wait > 0 and not self._closing:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), wait)
                except asyncio.TimeoutError:
                    pass
                continue
            batch, rest = items[:take], items[take:]
            del self._groups[key]
            if rest:  # back of the line, so that one busy key cannot starve the others
                self._groups[key] = rest
            self._pending -= len(batch)
            self._running = len(batch)
            start = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, run_isolated,
                                                     lambda ps: self.run_batch(key, ps), [i.payload for i in batch])
            except Exception as e:  # noqa: BLE001 - the worker itself failed: every caller hears of it
                results = [e] * len(batch)
            finally:
                self._running = 0
            self.stats["busy_s"] += time.perf_counter() - start
            self.stats["batches"] += 1
            self.stats["items"] += len(batch)
            self.stats["max_batch"] = max(self.stats["max_batch"], len(batch))
            for item, result in zip(batch, results):
                if isinstance(result, Exception):
                    self.stats["isolated"] += len(batch) > 1
                if item.future.done():
                    continue
                if isinstance(result, Exception):
                    item.future.set_exception(result)
                    item.future.exception()  # its caller may have left: no "never retrieved" warning then
                else:
                    item.future.set_result(result)
