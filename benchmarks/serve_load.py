"""Load benchmark of `unireward serve`: 32 concurrent clients for a fixed time on a tiny model.

    .venv/bin/python benchmarks/serve_load.py                     # both modes, 20 s per phase
    .venv/bin/python benchmarks/serve_load.py --mode gain --duration 10
    .venv/bin/python benchmarks/serve_load.py --mode restart      # the server is restarted mid-run

A tiny Qwen2-VL judge is built on the fly in a temp dir (or pass --model DIR); each server runs as a real
`unireward serve` subprocess on a loopback port with the result cache off, and the clients send
/v1/rank requests (image-gen/pair, two small PNGs inline) as fast as they get answers.

gain:    the same load against a micro-batching server (--max-batch-size 32) and a one-at-a-time server
         (--max-batch-size 1), alternating phases so both see the same machine; prints throughput, p50/p95
         latency, errors and lost requests per server, and on its last line `batching_gain: <x>`
         (throughput with batching / without).
restart: halfway through, the server gets SIGTERM (it finishes in-flight work) and a new one starts on the
         same port; clients retry refused connections and 429/503 with backoff. Nothing may be lost.
Errors are answers other than 200 that are not retried; lost requests are ones that never got a 200.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time

RETRY = {429, 503}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, batch: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "unireward", "serve", "--model", model, "--port", str(port), "--dtype", "float32",
           "--device", "cpu", "--max-batch-size", str(batch), "--max-wait-ms", "5", "--cache-size", "0",
           "--max-queue", "1024", "--log-level", "warning"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server on port {port} did not become healthy")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def payloads(n: int = 16) -> list[dict]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    urls = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, "PNG")
        urls.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode())
    return [{"task": "image-gen/pair", "prompt": f"a red circle number {i}", "a": urls[i], "b": urls[(i + 1) % n]}
            for i in range(n)]


class Stats:
    def __init__(self):
        self.ok = 0
        self.errors = 0
        self.lost = 0
        self.retries = 0
        self.latencies: list[float] = []
        self.elapsed = 0.0

    def line(self, name: str) -> str:
        lat = sorted(self.latencies) or [float("nan")]
        p50, p95 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.95))]
        return (f"{name:<10} throughput {self.ok / self.elapsed:7.2f} req/s  p50 {p50 * 1000:7.1f} ms  "
                f"p95 {p95 * 1000:7.1f} ms  ok {self.ok}  errors {self.errors}  lost {self.lost}  "
                f"retries {self.retries}")


async def client_loop(url: str, bodies: list[dict], stats: Stats, stop_at: float, seed: int,
                      give_up_s: float = 120.0) -> None:
    import httpx

    rnd = random.Random(seed)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        while time.monotonic() < stop_at:
            body = rnd.choice(bodies)
            start = time.monotonic()
            delay = 0.05
            while True:
                try:
                    r = await client.post("/v1/rank", json=body)
                except httpx.TransportError:
                    status = None
                else:
                    status = r.status_code
                if status == 200:
                    stats.ok += 1
                    stats.latencies.append(time.monotonic() - start)
                    break
                if status is not None and status not in RETRY:
                    stats.errors += 1
                    break
                if time.monotonic() - start > give_up_s:
                    stats.lost += 1
                    break
                stats.retries += 1
                await asyncio.sleep(delay * (0.5 + rnd.random()))
                delay = min(delay * 2, 1.0)


async def run_phase(url: str, bodies: list[dict], clients: int, duration: float, stats: Stats,
                    during=None) -> None:
    start = time.monotonic()
    stop_at = start + duration
    tasks = [asyncio.create_task(client_loop(url, bodies, stats, stop_at, seed=i)) for i in range(clients)]
    if during is not None:
        await during()
    await asyncio.gather(*tasks)
    stats.elapsed += time.monotonic() - start


def mean_batch(port: int) -> float:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).json()["mean_batch_size"]
    except (httpx.HTTPError, KeyError, ValueError):
        return float("nan")


def gain_mode(model: str, clients: int, duration: float, rounds: int) -> float:
    bodies = payloads()
    ports = {"batched": free_port(), "unbatched": free_port()}
    sizes = {"batched": 32, "unbatched": 1}
    stats = {name: Stats() for name in ports}
    procs = {}
    try:
        for name in ports:  # one at a time: the two would fight over the same cores while loading
            procs[name] = start_server(model, ports[name], sizes[name])
            wait_healthy(ports[name], procs[name])
        for name in ports:  # warm-up
            asyncio.run(run_phase(f"http://127.0.0.1:{ports[name]}", bodies, clients, 2.0, Stats()))
        for _ in range(rounds):
            for name in ports:
                asyncio.run(run_phase(f"http://127.0.0.1:{ports[name]}", bodies, clients, duration / rounds,
                                      stats[name]))
        batches = {name: mean_batch(port) for name, port in ports.items()}
    finally:
        for p in procs.values():
            stop_server(p)
    for name in ports:
        print(stats[name].line(name) + f"  mean batch {batches[name]:.1f}", flush=True)
    b, u = stats["batched"], stats["unbatched"]
    return (b.ok / b.elapsed) / max(u.ok / u.elapsed, 1e-9)


def restart_mode(model: str, clients: int, duration: float) -> Stats:
    bodies = payloads()
    port = free_port()
    stats = Stats()
    holder = {"proc": start_server(model, port, 32)}
    wait_healthy(port, holder["proc"])

    async def restart():
        await asyncio.sleep(duration / 3)
        loop = asyncio.get_running_loop()
        t = time.monotonic()
        await loop.run_in_executor(None, stop_server, holder["proc"])
        holder["proc"] = start_server(model, port, 32)
        await loop.run_in_executor(None, wait_healthy, port, holder["proc"])
        print(f"restart: server down for {time.monotonic() - t:.1f} s", flush=True)

    try:
        asyncio.run(run_phase(f"http://127.0.0.1:{port}", bodies, clients, duration, stats, during=restart))
    finally:
        stop_server(holder["proc"])
    print(stats.line("restart"), flush=True)
    return stats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["gain", "restart", "all"], default="all")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--duration", type=float, default=20.0, help="seconds of load per server (gain) or in all")
    p.add_argument("--rounds", type=int, default=2, help="alternations between the two servers (gain)")
    p.add_argument("--model", default=None, help="judge directory (default: build a tiny one)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from unireward.models.tiny import build_tiny_model

            model = str(build_tiny_model(os.path.join(tmp, "tiny"), family="qwen2-vl"))
        print(f"model {model}; {args.clients} clients; {os.cpu_count()} CPUs", flush=True)
        failed = False
        if args.mode in ("restart", "all"):
            s = restart_mode(model, args.clients, max(args.duration, 30.0))
            failed |= bool(s.errors or s.lost)
        if args.mode in ("gain", "all"):
            gain = gain_mode(model, args.clients, args.duration, args.rounds)
            print(f"batching_gain: {gain:.2f}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
