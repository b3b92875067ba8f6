"""Fault run of `unireward serve`: hostile and careless clients against a real server, nothing lost, nothing wrong.

    .venv/bin/python benchmarks/serve_faults.py                   # 30 s of faults, then SIGTERM under load
    .venv/bin/python benchmarks/serve_faults.py --duration 60 --model DIR

A tiny Qwen2-VL judge is built on the fly in a temp dir (or pass --model DIR) and served by a real `unireward
serve` subprocess on a loopback port (result cache off, so every answer is judged). Everything stays on
127.0.0.1. First each well-formed request is sent alone, and its answer kept as the reference; then, for
--duration seconds, these clients run at once:

- good:       /v1/reward (groups of 4) and /v1/rank with both orders; the answer must equal the reference;
- poisoned:   the same, plus in every request a group or item holding a 10000x1 image, which passes the
              server's own checks (--max-aspect-ratio is raised for this run) and makes the Qwen2-VL processor
              raise inside the micro-batch: that item must fail alone, its neighbours must equal the reference;
- oversize:   a group of 40 (1,560 judged orders, over --max-pairs): HTTP 413 naming max_pairs;
- disconnect: a good request whose client leaves after 50 ms (its work is dropped; not counted as lost);
- slow body:  a client that trickles its request body one byte every 0.5 s: HTTP 504 after --timeout;
- slow URL:   a candidate at a local URL that sends one byte every 0.5 s: HTTP 422 at the fetch deadline.

Then the server gets SIGTERM while the load goes on; requests in flight must still be answered (their result,
or 503 once the grace period is over). Printed: requests sent, answered (by status), dropped by their clients,
lost (a request that got no HTTP answer, or a 5xx other than a shutdown's 503), wrong answers, how long SIGTERM
took, and on the last line `faults_lost: N` (target 0).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOL = 1e-3  # batched and single forward passes may differ in the last float bits
AFTER = 3.0  # seconds the clients go on sending after SIGTERM (new connections are refused then)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png(seed: int, size=(16, 16)) -> str:
    import numpy as np
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class SlowURL(BaseHTTPRequestHandler):
    """Answers 200 with a 100 kB body, one byte every 0.5 s."""

    stop = threading.Event()

    def do_GET(self):  # noqa: N802 - the http.server interface
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        while not self.stop.wait(0.5):
            try:
                self.wfile.write(b"\0")
                self.wfile.flush()
            except OSError:
                return

    def log_message(self, *args):
        pass


class Run:
    def __init__(self, url: str, slow_base: str):
        self.url, self.slow_base = url, slow_base
        self.sent = 0
        self.statuses: Counter = Counter()
        self.dropped = 0
        self.lost: list[str] = []
        self.wrong: list[str] = []
        self.reference: dict[str, dict] = {}
        self.sigterm_at: float | None = None
        self.stop_at = 0.0

    # -- the requests ---------------------------------------------------------------------------------------
    def good_group(self, k: int) -> dict:
        return {"prompt": f"a red circle number {k}", "candidates": [png(10 * k + i) for i in range(4)], "id": f"g{k}"}

    def good_items(self, k: int) -> list[dict]:
        return [{"prompt": f"a blue square number {k}", "a": png(100 + 2 * k), "b": png(101 + 2 * k),
                 "id": f"i{k}"}]

    async def reference_answers(self, client) -> None:
        for k in range(4):
            r = await client.post("/v1/reward", json={"groups": [self.good_group(k)]})
            self.reference[f"g{k}"] = r.json()["results"][0]
            r = await client.post("/v1/rank", json={"task": "image-gen/pair", "both_orders": True,
                                                    "items": self.good_items(k)})
            self.reference[f"i{k}"] = r.json()["results"][0]

    def same(self, got: dict, key: str) -> bool:
        ref = self.reference[key]
        if got.get("status") != ref.get("status"):
            return False
        if "rewards" in ref:
            return all(abs(a - b) <= TOL for a, b in zip(got["rewards"], ref["rewards"]))
        return got.get("winner") == ref.get("winner") and abs((got.get("probs") or {}).get("1", 0)
                                                              - (ref.get("probs") or {}).get("1", 0)) <= TOL

    # -- bookkeeping ----------------------------------------------------------------------------------------
    def answered(self, kind: str, status: int, body, check) -> None:
        self.statuses[status] += 1
        if status == 503 and self.sigterm_at is not None:
            return  # shutting down: a correct answer for any request
        problem = check(status, body)
        if problem and status >= 500:
            self.lost.append(f"{kind}: HTTP {status} {str(body)[:120]}")
        elif problem:
            self.wrong.append(f"{kind}: {problem}")

    async def send(self, client, kind: str, path: str, body: dict, check) -> None:
        import httpx

        self.sent += 1
        try:
            r = await client.post(path, json=body)
        except httpx.HTTPError as e:
            if self.sigterm_at is not None and isinstance(e, httpx.ConnectError):
                self.sent -= 1  # refused after the shutdown began: never sent
                return
            self.lost.append(f"{kind}: no answer ({type(e).__name__})")
            return
        try:
            data = r.json()
        except ValueError:
            data = r.text
        self.answered(kind, r.status_code, data, check)

    # -- the clients ----------------------------------------------------------------------------------------
    async def good(self, client, k: int) -> None:
        while time.monotonic() < self.stop_at:
            await self.send(client, "good reward", "/v1/reward", {"groups": [self.good_group(k)]},
                            lambda s, b: None if s == 200 and self.same(b["results"][0], f"g{k}") else f"{s} {b}")
            await self.send(client, "good rank", "/v1/rank", {"task": "image-gen/pair", "both_orders": True,
                                                              "items": self.good_items(k)},
                            lambda s, b: None if s == 200 and self.same(b["results"][0], f"i{k}") else f"{s} {b}")

    async def poisoned(self, client, k: int) -> None:
        thin = png(999, size=(10000, 1))
        bad_group = {"prompt": "a thin line", "candidates": [png(1), thin, png(2)]}
        bad_item = {"prompt": "a thin line", "a": thin, "b": png(3)}

        def check_groups(s, b):
            if s != 200:
                return f"{s} {b}"
            ok, bad = b["results"]
            if not self.same(ok, f"g{k}"):
                return f"the good group's answer changed: {ok}"
            if bad["status"] != "error" or "groups[1]" not in (bad["reason"] or ""):
                return f"the poisoned group was not its own error: {bad}"
            return None

        def check_items(s, b):
            if s != 200:
                return f"{s} {b}"
            first, bad, last = b["results"]
            if not (self.same(first, f"i{k}") and self.same(last, f"i{(k + 1) % 4}")):
                return "a good item's answer changed"
            return None if bad["status"] == "error" and bad["reason"].startswith("items[1]") else f"{bad}"

        while time.monotonic() < self.stop_at:
            await self.send(client, "poisoned reward", "/v1/reward", {"groups": [self.good_group(k), bad_group]},
                            check_groups)
            items = self.good_items(k) + [bad_item] + self.good_items((k + 1) % 4)
            await self.send(client, "poisoned rank", "/v1/rank", {"task": "image-gen/pair", "both_orders": True,
                                                                  "items": items}, check_items)

    async def oversize(self, client) -> None:
        big = {"prompt": "forty", "candidates": [png(500 + i, size=(8, 8)) for i in range(40)]}
        while time.monotonic() < self.stop_at:
            await self.send(client, "oversize", "/v1/reward", big,
                            lambda s, b: None if s == 413 and "max_pairs" in b["error"]["message"] else f"{s} {b}")
            await asyncio.sleep(0.2)

    async def disconnect(self, client, k: int) -> None:
        import httpx

        while time.monotonic() < self.stop_at:
            try:
                await asyncio.wait_for(client.post("/v1/reward", json={"groups": [self.good_group(k)]}), 0.05)
            except asyncio.TimeoutError:
                self.dropped += 1
            except httpx.HTTPError:  # the server has gone (SIGTERM): this client only ever leaves anyway
                pass
            await asyncio.sleep(0.2)

    async def slow_body(self) -> None:
        host, port = self.url.removeprefix("http://").split(":")
        body = json.dumps({"groups": [self.good_group(0)]}).encode()
        while time.monotonic() < self.stop_at:
            self.sent += 1
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(f"POST /v1/reward HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(body)}\r\n\r\n".encode())
                answer = asyncio.ensure_future(reader.read(65536))
                for byte in body:
                    if answer.done():
                        break
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.5)
                head = await asyncio.wait_for(answer, 60)
                writer.close()
            except (OSError, asyncio.TimeoutError) as e:
                if self.sigterm_at is not None:
                    self.sent -= 1
                    return
                self.lost.append(f"slow body: no answer ({type(e).__name__})")
                continue
            status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
            self.answered("slow body", status, head[-200:], lambda s, b: None if s == 504 else f"{s} {b}")

    async def slow_url(self, client, k: int) -> None:
        while time.monotonic() < self.stop_at:
            body = {"task": "image-gen/pair", "prompt": "p", "a": f"{self.slow_base}/{k}?{time.monotonic()}",
                    "b": png(7)}
            await self.send(client, "slow url", "/v1/rank", body,
                            lambda s, b: None if s == 422 and "fetch" in b["error"]["message"] else f"{s} {b}")


async def run(args, model: str) -> int:
    import httpx

    slow = ThreadingHTTPServer(("127.0.0.1", 0), SlowURL)
    slow.daemon_threads = True
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    port = free_port()
    cmd = [sys.executable, "-m", "unireward", "serve", "--model", model, "--port", str(port), "--dtype", "float32",
           "--device", "cpu", "--cache-size", "0", "--max-pairs", "600", "--max-wait-ms", "20",
           "--timeout", "10", "--graceful-timeout", "5", "--allow-urls", "--fetch-timeout", "3",
           "--max-aspect-ratio", "1000000", "--log-level", "error", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    url = f"http://127.0.0.1:{port}"
    r = Run(url, f"http://127.0.0.1:{slow.server_address[1]}")
    try:
        deadline = time.monotonic() + 300
        async with httpx.AsyncClient(base_url=url, timeout=60) as probe:
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {' '.join(cmd)}")
                try:
                    if (await probe.get("/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.5)
            await r.reference_answers(probe)
        limits = httpx.Limits(max_keepalive_connections=0)  # a fresh connection per request: no keep-alive races
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            r.stop_at = time.monotonic() + args.duration + AFTER
            clients = ([r.good(client, k) for k in range(4)] + [r.poisoned(client, k) for k in range(2)]
                       + [r.oversize(client)] + [r.disconnect(client, k) for k in range(2)]
                       + [r.slow_body() for _ in range(2)] + [r.slow_url(client, k) for k in range(2)])
            tasks = [asyncio.ensure_future(c) for c in clients]
            await asyncio.sleep(args.duration)
            metrics = (await client.get("/metrics")).json()
            r.sigterm_at = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            await asyncio.gather(*tasks)
            code = await asyncio.to_thread(proc.wait, 120)
            sigterm_s = time.monotonic() - r.sigterm_at
    finally:
        SlowURL.stop.set()
        slow.shutdown()
        if proc.poll() is None:
            proc.kill()
    answered = sum(r.statuses.values())
    print(f"fault run: {args.duration:g} s of faults, then SIGTERM under load; a tiny Qwen2-VL judge on CPU")
    print(f"requests sent: {r.sent}")
    print(f"answered: {answered} ({', '.join(f'{s}: {n}' for s, n in sorted(r.statuses.items()))})")
    print(f"dropped by their clients (disconnects): {r.dropped}; the server dropped {metrics['dropped_items']} "
          "queued items")
    print(f"model calls: {metrics['batches']} (mean batch {metrics['mean_batch_size']:.1f} items); items that "
          f"failed alone in a shared batch: {metrics['isolated_failures']}")
    print(f"lost: {len(r.lost)}" + "".join(f"\n  {x}" for x in r.lost[:10]))
    print(f"wrong answers: {len(r.wrong)}" + "".join(f"\n  {x}" for x in r.wrong[:10]))
    print(f"sigterm: exit code {code} after {sigterm_s:.1f} s (grace period 5 s)")
    print(f"faults_lost: {len(r.lost) + (code != 0)}")
    return 0 if not r.lost and not r.wrong and code == 0 else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="judge directory (default: a tiny Qwen2-VL built in a temp dir)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of faults before SIGTERM")
    args = p.parse_args()
    model = args.model
    if model is None:
        from unireward.models.tiny import build_tiny_model

        model = str(build_tiny_model(tempfile.mkdtemp(prefix="serve_faults_"), family="qwen2-vl"))
    return asyncio.run(run(args, model))


if __name__ == "__main__":
    sys.exit(main())
