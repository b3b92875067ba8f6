"""Server settings: one dataclass, safe by default (loopback, no URL fetching, bounded everything).

Every limit answers a request that breaks it with HTTP 413 (431 for headers) and a message naming the limit."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 8000
    api_key: str | None = None  # when set, every endpoint but /health needs `Authorization: Bearer <key>`
    allowed_roots: list[str] = field(default_factory=list)  # local media paths must resolve under one of these
    allow_urls: bool = False  # fetch http(s) media; off by default
    # micro-batching and back-pressure
    max_batch_size: int = 32  # requests per model call
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for company
    max_queue: int = 256  # queued + running requests before HTTP 429
    timeout_s: float = 60.0  # per request, reading, fetching, decoding and queueing included; HTTP 504 after
    cache_size: int = 10_000  # cached results (LRU); 0 disables the cache
    max_idempotency_keys: int = 10_000  # /v1/reward idempotency keys remembered (LRU), whatever cache_size is
    # request limits
    max_request_bytes: int = 64 * 1024 * 1024
    max_header_bytes: int = 32 * 1024  # request line and headers together; HTTP 431 over it
    max_json_depth: int = 64  # nesting of arrays and objects in a body
    max_pixels: int = 16_000_000  # per image or frame, as declared by its header (decompression-bomb guard)
    max_aspect_ratio: float = 200.0  # long side / short side of an image or frame (Qwen-VL processors refuse more)
    max_frames: int = 64  # per video (frames sent as a list; the judge's policy bounds the frames sampled)
    max_prompt_chars: int = 16_000  # per text field (prompt, answer, chat message)
    max_items: int = 256  # items per batched native request, candidates per group, groups per /v1/reward
    max_pairs: int = 8192  # judged orders (pairs x orders, or points) per request, and per model call
    max_key_chars: int = 256  # length of an idempotency key
    max_new_tokens: int = 1024  # cap on max_tokens in chat completions
    max_logprobs: int = 20  # cap on top_logprobs, as in vLLM's --max-logprobs
    # URL media (--allow-urls)
    fetch_timeout_s: float = 20.0  # per URL, in total: waiting for a fetch slot, connecting, redirects, reading
    max_redirects: int = 3  # followed only within the URL's origin (scheme, host, port)
    max_fetches: int = 8  # URL fetches at once (their own threads: slow servers delay only other fetches)
    served_model_name: str = "unireward"
    # scorers a /v1/reward "rewards" spec may name beside the served model: name -> short name, hub id or local
    # copy (`unireward models`), each loaded once at start-up
    scorers: dict = field(default_factory=dict)
    graceful_timeout_s: float = 30.0  # how long shutdown waits for in-flight requests

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_queue", "max_request_bytes", "max_header_bytes", "max_json_depth",
                     "max_pixels", "max_frames", "max_prompt_chars", "max_items", "max_pairs", "max_key_chars",
                     "max_new_tokens", "max_idempotency_keys", "max_fetches"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ServeConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.timeout_s <= 0 or self.cache_size < 0 or self.max_logprobs < 0:
            raise ConfigError("ServeConfig: max_wait_ms, cache_size and max_logprobs must be >= 0, timeout_s > 0")
        if not self.fetch_timeout_s > 0 or self.max_redirects < 0 or not self.max_aspect_ratio >= 1:
            raise ConfigError("ServeConfig: fetch_timeout_s must be > 0, max_redirects >= 0, max_aspect_ratio >= 1")
        if not all(math.isfinite(v) for v in (self.timeout_s, self.fetch_timeout_s, self.graceful_timeout_s)):
            raise ConfigError("ServeConfig: timeouts must be finite numbers of seconds")
        if self.api_key is not None and not (self.api_key.isascii() and self.api_key.isprintable()
                                             and " " not in self.api_key):
            raise ConfigError("the API key must be printable ASCII without spaces (HTTP headers carry bytes, and "
                              "clients encode other characters differently); generate one with "
                              "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        roots = []
        for r in self.allowed_roots:
            p = Path(r).expanduser().resolve()
            if not p.is_dir():
                raise ConfigError(f"--allowed-root {r}: not a directory")
            roots.append(str(p))
        self.allowed_roots = roots
