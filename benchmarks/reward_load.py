"""Load benchmark of POST /v1/reward: groups of G = 8 images from 16 concurrent clients.

    .venv/bin/python benchmarks/reward_load.py                    # tiny Qwen2-VL judge built on the fly
    .venv/bin/python benchmarks/reward_load.py --model src/unireward/sandbox/judge --requests 2
    .venv/bin/python benchmarks/reward_load.py --clients 16 --group 8 --requests 4 --mode point

A real server (`ServerThread`: uvicorn on a loopback port, micro-batching on, result cache irrelevant: every
group is new) serves the judge; each client is a thread with its own `rewards.client.RemoteJudge` (the client
trainers use) sending `--requests` requests of one group each (G images, inline PNGs), each group tagged with an
id. An error is a request that failed (any HTTP error or transport failure); a lost group is one sent whose
answer did not come back with its id and one reward per candidate. Prints throughput, latency percentiles, the
server's mean micro-batch size, and on its last line `reward_load_errors: N` (target 0, with 0 lost).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def make_groups(n: int, g: int, seed: int = 0) -> list[tuple[str, list]]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [(f"a red circle number {i}", [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
                                         for _ in range(g)]) for i in range(n)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="", help="a judge folder (default: a tiny random Qwen2-VL built here)")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--group", type=int, default=8, help="candidates per group (G)")
    p.add_argument("--requests", type=int, default=2, help="requests (one group each) per client")
    p.add_argument("--mode", default="win-rate", choices=["win-rate", "bradley-terry", "point"])
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=20.0)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from unireward.judge import RewardModel
    from unireward.rewards import GroupRequest
    from unireward.rewards.client import RemoteJudge, RewardClientError
    from unireward.serve import ServeConfig, ServerThread

    model = args.model
    if not model:
        from unireward.models.tiny import build_tiny_model

        model = str(build_tiny_model(tempfile.mkdtemp(prefix="reward_load_"), family="qwen2-vl"))
    rm = RewardModel.load(model, dtype=None, batch_size=args.max_batch_size)
    cfg = ServeConfig(port=0, max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms, timeout_s=600,
                      max_queue=1024)
    groups = make_groups(args.clients * args.requests, args.group)
    lock = threading.Lock()
    stats = {"ok": 0, "errors": 0, "lost": 0, "latency": [], "messages": []}

    def client(k: int, url: str) -> None:
        judge = RemoteJudge(url, timeout_s=600)
        for r in range(args.requests):
            i = k * args.requests + r
            prompt, images = groups[i]
            gid = f"c{k}-r{r}"
            start = time.monotonic()
            try:
                (res,) = judge.group_reward_batch([GroupRequest(prompt, images, id=gid)], mode=args.mode)
            except (RewardClientError, ValueError) as e:
                with lock:
                    stats["errors"] += 1
                    stats["lost"] += 1
                    stats["messages"].append(str(e)[:200])
                continue
            good = res.id == gid and len(res.rewards) == args.group and res.status == "ok"
            with lock:
                stats["latency"].append(time.monotonic() - start)
                if good:
                    stats["ok"] += 1
                else:
                    stats["lost"] += 1
                    stats["messages"].append(f"{gid}: answer {res.id} status {res.status} {res.reason}")

    with ServerThread(rm, cfg) as srv:
        t0 = time.monotonic()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(lambda k: client(k, srv.url), range(args.clients)))
        elapsed = time.monotonic() - t0
        import httpx

        metrics = httpx.get(srv.url + "/metrics", timeout=10).json()
    lat = sorted(stats["latency"]) or [float("nan")]
    n = args.clients * args.requests
    pairs = args.group * (args.group - 1) // 2
    judged = n * (pairs * 2 if args.mode != "point" else args.group)
    print(f"{n} groups of {args.group} ({args.mode}) from {args.clients} clients in {elapsed:.1f} s: "
          f"{n / elapsed:.2f} groups/s, {judged / elapsed:.1f} judgements/s")
    print(f"latency p50 {lat[len(lat) // 2]:.2f} s  p95 {lat[min(len(lat) - 1, int(len(lat) * 0.95))]:.2f} s  "
          f"mean micro-batch {metrics['mean_batch_size']:.1f} groups (max {metrics['max_batch_size_seen']})")
    print(f"ok {stats['ok']}  errors {stats['errors']}  lost {stats['lost']}")
    for m in stats["messages"][:5]:
        print("  " + m)
    print(f"reward_load_errors: {stats['errors']}")
    return stats["errors"] + stats["lost"]


if __name__ == "__main__":
    raise SystemExit(1 if main() else 0)
