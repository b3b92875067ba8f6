"""Group judging through real engines, side by side in one run: a group of G candidates for one prompt judged in
both orders by every path, timed per group and per judged order, with the requests each path sends.

    PYTHONPATH=src .venv/bin/python benchmarks/engine_throughput.py                      # the shipped judge
    PYTHONPATH=src .venv/bin/python benchmarks/engine_throughput.py --model scaled-qwen2.5-vl   # 448 px images

Rows:
- `unireward in process`: transformers, the shared-media + shared-prefix group path (`RewardModel.group_reward`);
- `unireward -> vLLM (HTTP)`: the OpenAI backend against vLLM's OpenAI server, `concurrency` requests in flight
  (a reasoning judge's verdict read from the response that wrote the reasoning: one request per judged order);
- `unireward -> vLLM (HTTP, generate then read)`: the same, the reasoning generated without log-probabilities and
  the verdict read in a second, prefix-cached request (`read_in_generation=False`);
- `vLLM in process`: `backend="vllm"` (run in the engine environment, `.venv-vllm`);
- `authors' way -> vLLM`: as the method's public reward code calls a vLLM server (Pref-GRPO's reward): one order
  per pair, one request per pair, the verdict generated and parsed (no probabilities), same concurrency.
The vLLM server and the in-process engine are started here from `.venv-vllm` (`bash install.sh --engine vllm`),
on 127.0.0.1, and stopped by PID. Every unireward path judges all G(G-1) orders and reads probabilities, so their
win rates should agree (within 1e-3); the authors' way judges half the orders and gives no probabilities.

The shipped judge (a tiny Qwen2-VL trained in the sandbox, reasoning first: 56 px held-out renders) is judged with
its own spec (reasoning, 128 tokens). `--model scaled-qwen2.5-vl` builds `group_throughput.py`'s random
Qwen2.5-VL at the real patch and merge sizes (448 px images, 256 tokens each), which reads its verdict from
probabilities right after the answer prefix (no reasoning; random weights never stop on their own, so its
generation budget is `--max-new-tokens`).

Prints a table (seconds per group, requests per group, seconds per judged order) and whether the unireward paths'
rewards agree; `http_order_speedup` is the authors' way's seconds per order / the best HTTP row's; the last line is
`order_speedup: X` = the authors' way's seconds per order / the best unireward path's.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VLLM_PY = ROOT / ".venv-vllm" / "bin" / "python"
SHIPPED = ROOT / "src" / "unireward" / "sandbox" / "judge"
PROMPT = "a red circle at the top left"


def shipped_group(folder: Path, g: int) -> list[str]:
    """G held-out renders for PROMPT at the shipped judge's size: the right image and images with one or two
    facts wrong (colour, shape, place)."""
    from PIL import Image

    from unireward.sandbox.world import Obj, Scene, render_image

    objs = [Obj("red", "circle", "top left"), Obj("blue", "circle", "top left"), Obj("red", "square", "top left"),
            Obj("red", "circle", "bottom right"), Obj("green", "triangle", "top left"),
            Obj("red", "triangle", "center"), Obj("yellow", "circle", "bottom left"),
            Obj("blue", "square", "top right")]
    paths = []
    for k in range(g):
        p = folder / f"cand{k}.png"
        Image.fromarray(render_image(Scene((objs[k % len(objs)],)), 56, seed=100 + k)).save(p)
        paths.append(str(p))
    return paths


def scaled_model(folder: Path) -> Path:
    """group_throughput.py's scaled random Qwen2.5-VL, saved with its processor (so vLLM can load it)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from group_throughput import build

    args = argparse.Namespace(image_size=448, hidden=256, layers=2, vision_hidden=80, vision_layers=2)
    model, processor = build(args)
    out = folder / "scaled-qwen2.5-vl"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def scaled_group(folder: Path, g: int) -> list[str]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for k in range(g):
        p = folder / f"noise{k}.png"
        Image.fromarray(rng.integers(0, 255, (448, 448, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def engine_env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
               VLLM_CPU_OMP_THREADS_BIND=os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "auto"))
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def start_server(model: Path, port: int, log: Path) -> subprocess.Popen:
    cmd = [str(VLLM_PY), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--served-model-name",
           "judge", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--max-model-len", "4096",
           "--max-num-seqs", "16", "--max-num-batched-tokens", "4096", "--limit-mm-per-prompt",
           '{"image": 8, "video": 2}', "--enable-prefix-caching"]
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=engine_env())


def wait_ready(port: int, proc: subprocess.Popen, deadline_s: float = 600) -> None:
    import httpx

    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the vLLM server exited with {proc.returncode}; see its log")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise RuntimeError(f"the vLLM server was not ready within {deadline_s:.0f} s")


def judge_kwargs(args) -> dict:
    return {} if args.model == "shipped" else {"reasoning": False, "max_new_tokens": args.max_new_tokens}


def time_group(rm, cands: list[str], repeat: int) -> tuple[float, object]:
    """Best wall seconds of `repeat` group rewards (win rate, both orders) after one warm-up, and the rewards."""
    out = rm.group_reward(PROMPT, cands, mode="win-rate", both_orders=True)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        out = rm.group_reward(PROMPT, cands, mode="win-rate", both_orders=True)
        best = min(best, time.perf_counter() - start)
    return best, out


def authors_way(url: str, cands: list[str], max_tokens: int, concurrency: int, repeat: int) -> tuple[float, int, list]:
    """One order per pair, one request per pair: generate the verdict and parse it (Pref-GRPO's reward call)."""
    from unireward.backends.openai import OpenAIBackend
    from unireward.judge import RewardModel

    backend = OpenAIBackend(url, served_model="judge", use_logprobs=False, concurrency=concurrency)
    rm = RewardModel(backend, method="generate", max_new_tokens=max_tokens)
    from unireward.grouping import schedule_pairs
    from unireward.judge import PairRequest

    pairs = schedule_pairs(len(cands), "round-robin", seed=0)
    reqs = [PairRequest(PROMPT, cands[i], cands[j]) for i, j in pairs]
    rm.rank_batch(reqs)  # warm-up
    best, n0 = float("inf"), backend.requests
    for _ in range(repeat):
        n0 = backend.requests
        start = time.perf_counter()
        results = rm.rank_batch(reqs)
        best = min(best, time.perf_counter() - start)
    return best, backend.requests - n0, [r.winner for r in results]


def vllm_in_process(model: Path, cands: list[str], args, out: Path) -> dict:
    """The vLLM in-process row, run in the engine environment (this script with --row vllm)."""
    cmd = [str(VLLM_PY), __file__, "--row", "vllm", "--engine-model", str(model), "--model", args.model,
           "--repeat", str(args.repeat), "--max-new-tokens", str(args.max_new_tokens), "--out", str(out), *cands]
    proc = subprocess.run(cmd, env=engine_env(), capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"the vLLM in-process row failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def row_vllm(args) -> None:
    from unireward.judge import RewardModel

    rm = RewardModel.load(args.engine_model, backend="vllm", dtype="float32", max_model_len=4096,
                          **judge_kwargs(args))
    seconds, g = time_group(rm, args.cands, args.repeat)
    Path(args.out).write_text(json.dumps({"seconds": seconds, "rewards": g.rewards, "calls": None}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="shipped", choices=["shipped", "scaled-qwen2.5-vl"])
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=128, help="the authors' way's generation budget")
    ap.add_argument("--skip-vllm-in-process", action="store_true")
    ap.add_argument("--row", help=argparse.SUPPRESS)
    ap.add_argument("--engine-model", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("cands", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.row == "vllm":
        row_vllm(args)
        return
    if not VLLM_PY.exists():
        raise SystemExit("no engine environment: run `bash install.sh --engine vllm` first (makes .venv-vllm)")

    from unireward.judge import RewardModel

    tmp = Path(tempfile.mkdtemp(prefix="engine-throughput-"))
    if args.model == "shipped":
        model, cands = SHIPPED, shipped_group(tmp, args.group)
    else:
        model, cands = scaled_model(tmp), scaled_group(tmp, args.group)
    orders = args.group * (args.group - 1)
    rows: dict[str, dict] = {}

    local = RewardModel.load(str(model), dtype="float32", **judge_kwargs(args))
    seconds, g = time_group(local, cands, args.repeat)
    rows["unireward in process (shared media + prefix)"] = {"seconds": seconds, "requests": None, "orders": orders,
                                                           "rewards": g.rewards}
    if not args.skip_vllm_in_process:
        r = vllm_in_process(model, cands, args, tmp / "vllm_row.json")
        rows["vLLM in process"] = {"seconds": r["seconds"], "requests": None, "orders": orders,
                                   "rewards": r["rewards"]}
    port = free_port()
    server = start_server(model, port, tmp / "vllm_server.log")
    try:
        wait_ready(port, server)
        url = f"http://127.0.0.1:{port}/v1"
        remote = RewardModel.load(url, backend="openai", served_model="judge", checkpoint=str(model),
                                  concurrency=args.concurrency, **judge_kwargs(args))
        n0 = remote.backend.requests
        seconds, g = time_group(remote, cands, args.repeat)
        per_group = (remote.backend.requests - n0) // (args.repeat + 1)
        rows[f"unireward -> vLLM (HTTP, concurrency {args.concurrency})"] = {
            "seconds": seconds, "requests": per_group, "orders": orders, "rewards": g.rewards}
        if remote.spec.reasoning:  # the reasoning generated without log-probabilities, read in a second request
            two = RewardModel.load(url, backend="openai", served_model="judge", checkpoint=str(model),
                                   concurrency=args.concurrency, read_in_generation=False, **judge_kwargs(args))
            n0 = two.backend.requests
            seconds, g = time_group(two, cands, args.repeat)
            rows[f"unireward -> vLLM (HTTP, generate then read, concurrency {args.concurrency})"] = {
                "seconds": seconds, "requests": (two.backend.requests - n0) // (args.repeat + 1), "orders": orders,
                "rewards": g.rewards}
        budget = remote.spec.max_new_tokens if args.model == "shipped" else args.max_new_tokens
        seconds, requests, winners = authors_way(url, cands, budget, args.concurrency, args.repeat)
        rows["authors' way -> vLLM (one order, generate + parse)"] = {
            "seconds": seconds, "requests": requests, "orders": orders // 2, "rewards": None}
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()

    print(f"model: {args.model} ({model}); group {args.group}, prompt {PROMPT!r}")
    print("| path | orders judged | probabilities | seconds per group | requests per group | seconds per order |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['orders']} | {'no' if r['rewards'] is None else 'yes'} | {r['seconds']:.2f} | "
              f"{'-' if r['requests'] is None else r['requests']} | {r['seconds'] / r['orders']:.3f} |")
    ours = {k: r for k, r in rows.items() if r["rewards"] is not None}
    ref = next(iter(ours.values()))["rewards"]
    diff = max(abs(a - b) for r in ours.values() for a, b in zip(r["rewards"], ref)
               if a is not None and b is not None)
    missing = sum(v is None for r in ours.values() for v in r["rewards"])
    print(f"unireward paths' win rates agree within {diff:.1e} (rewards missing: {missing})")
    best = min(ours.values(), key=lambda r: r["seconds"] / r["orders"])
    authors = rows["authors' way -> vLLM (one order, generate + parse)"]
    http = min((r for k, r in rows.items() if "HTTP" in k), key=lambda r: r["seconds"] / r["orders"])
    print(f"http_order_speedup: {(authors['seconds'] / authors['orders']) / (http['seconds'] / http['orders']):.2f}")
    print(f"order_speedup: {(authors['seconds'] / authors['orders']) / (best['seconds'] / best['orders']):.2f}")


if __name__ == "__main__":
    main()
