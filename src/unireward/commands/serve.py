"""`unireward serve`: serve a judge over HTTP (native endpoints + OpenAI-compatible chat completions).

    unireward serve --model path/to/judge                         # http://127.0.0.1:8000, no key
    UNIREWARD_API_KEY=secret unireward serve --model M --host 0.0.0.0 --allowed-root /data/media
    unireward serve --model http://gpu1:8000/v1,http://gpu2:8000/v1 --backend openai --served-model judge \
        --checkpoint CodeGoat24/UnifiedReward-2.0-qwen3vl-8b      # the released judge those servers run
    unireward serve --model path/to/judge --scorer pickscore --scorer hps=/models/HPS_v2.1_compressed.pt
                                                                  # /v1/reward specs may name these scorers too

Endpoints: POST /v1/rank, /v1/score, /v1/rank-group, /v1/chat/completions; GET /v1/models, /health,
/metrics. Requests that arrive together are micro-batched (--max-batch-size, --max-wait-ms); a full queue
answers 429, a slow request 504; Ctrl-C / SIGTERM gives in-flight requests --graceful-timeout seconds, then
answers the rest 503 and exits. Limits and what --allowed-root and --allow-urls guarantee: README, "Security".
"""

from __future__ import annotations

import argparse

from .judge import add_judge_choice, judge_choice


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve a judge over HTTP (rank/score/rank-group + OpenAI API)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="local directory or hub id (hf), or base URL(s) (openai)")
    p.add_argument("--backend", default="hf", choices=["hf", "openai", "vllm"],
                   help="how the judge runs: transformers or vLLM in process, or an OpenAI-compatible server "
                        "(default: hf)")
    p.add_argument("--served-model", default=None, help="openai backend: the model name on the upstream server")
    p.add_argument("--served-model-name", default="unireward", help="the model id this server reports")
    add_judge_choice(p)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' (default: "
                                                   "$UNIREWARD_API_KEY, else no key)")
    p.add_argument("--allowed-root", action="append", default=[], metavar="DIR",
                   help="allow local media paths under DIR (repeatable; default: none, media inline only)")
    p.add_argument("--allow-urls", action="store_true", help="fetch http(s) media URLs (default: refused)")
    p.add_argument("--fetch-timeout", type=float, default=20.0,
                   help="seconds per URL fetch in all, redirects and a wait for a fetch slot included (default: 20)")
    p.add_argument("--max-redirects", type=int, default=3,
                   help="redirects followed per URL, within its own origin only (default: 3)")
    p.add_argument("--max-batch-size", type=int, default=32, help="requests per model call (default: 32)")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="batching wait for the first request (default: 5)")
    p.add_argument("--max-queue", type=int, default=256, help="queued requests before HTTP 429 (default: 256)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request before HTTP 504 (default: 60)")
    p.add_argument("--graceful-timeout", type=float, default=30.0,
                   help="on SIGTERM, seconds in-flight requests get to finish before they are dropped (default: 30)")
    p.add_argument("--cache-size", type=int, default=10000, help="cached results, 0 disables (default: 10000)")
    p.add_argument("--max-request-mb", type=float, default=64.0, help="request body limit (default: 64)")
    p.add_argument("--max-pixels", type=int, default=16_000_000, help="per image/frame source pixels")
    p.add_argument("--max-aspect-ratio", type=float, default=200.0,
                   help="long side / short side of an image or frame (default: 200, what Qwen-VL processors take)")
    p.add_argument("--max-frames", type=int, default=64, help="frames per video")
    p.add_argument("--max-prompt-chars", type=int, default=16000, help="characters per text field")
    p.add_argument("--max-pairs", type=int, default=8192,
                   help="judged orders per request and per model call: a win-rate group of G costs G(G-1) with "
                        "both orders (default: 8192)")
    p.add_argument("--max-logprobs", type=int, default=20, help="cap on top_logprobs (default: 20)")
    p.add_argument("--max-new-tokens", type=int, default=1024,
                   help="generation budget of a chat completion; a larger max_tokens is capped to it and the "
                        "response says so in `warnings` (default: 1024)")
    p.add_argument("--scorer", action="append", default=[], metavar="NAME[=MODEL]",
                   help="also load this scorer (`unireward models`; MODEL a hub id or local copy, default NAME) for "
                        "/v1/reward \"rewards\" specs (repeatable)")
    p.add_argument("--dtype", default="auto", help="hf backend: auto, bfloat16, float16 or float32")
    p.add_argument("--device", default=None, help="hf backend: cuda, cuda:1, cpu (default: cuda if available)")
    p.add_argument("--no-progress", action="store_true", help="hide the model loading progress bars")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def run(args) -> int:
    import os

    from ..judge import RewardModel
    from ..serve.config import ServeConfig
    from ..serve.server import serve

    cfg = ServeConfig(
        host=args.host, port=args.port, api_key=args.api_key or os.environ.get("UNIREWARD_API_KEY") or None,
        allowed_roots=args.allowed_root, allow_urls=args.allow_urls, max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms, max_queue=args.max_queue, timeout_s=args.timeout, cache_size=args.cache_size,
        max_request_bytes=int(args.max_request_mb * 1024 * 1024), max_pixels=args.max_pixels,
        max_frames=args.max_frames, max_prompt_chars=args.max_prompt_chars, max_logprobs=args.max_logprobs,
        max_new_tokens=args.max_new_tokens, served_model_name=args.served_model_name, max_pairs=args.max_pairs,
        fetch_timeout_s=args.fetch_timeout, max_redirects=args.max_redirects,
        graceful_timeout_s=args.graceful_timeout, max_aspect_ratio=args.max_aspect_ratio,
        scorers=dict((s.split("=", 1) + [s])[:2] for s in args.scorer))
    if args.no_progress:
        from .judge import quiet_loading

        quiet_loading()
    if args.backend == "hf":
        rm = RewardModel.load(args.model, dtype=args.dtype, device=args.device, batch_size=args.max_batch_size,
                              allow_urls=args.allow_urls, **judge_choice(args))
    elif args.backend == "vllm":
        rm = RewardModel.load(args.model, backend="vllm", dtype=args.dtype, allow_urls=args.allow_urls,
                              **judge_choice(args))
    else:
        rm = RewardModel.load(args.model, backend="openai", served_model=args.served_model,
                              allow_urls=args.allow_urls, **judge_choice(args))
    if cfg.host not in ("127.0.0.1", "localhost", "::1") and not cfg.api_key:
        print(f"warning: serving on {cfg.host} without an API key; anyone who can reach it can use it")
    print(f"unireward: serving {args.model} on http://{cfg.host}:{cfg.port} "
          f"(batch {cfg.max_batch_size}, wait {cfg.max_wait_ms:g} ms, queue {cfg.max_queue})", flush=True)
    serve(rm, cfg, log_level=args.log_level)
    return 0
