"""Server settings: one dataclass, safe by default (loopback, no URL fetching, bounded everything)."""

from __future__ import annotations

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
    timeout_s: float = 60.0  # per request, queueing included; HTTP 504 after
    cache_size: int = 10_000  # cached results (LRU); 0 disables the cache
    # request limits
    max_request_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 16_000_000  # per image or frame, as declared by its header (decompression-bomb guard)
    max_frames: int = 64  # per video (frames sampled, or frames sent as a list)
    max_prompt_chars: int = 16_000  # per text field (prompt, answer, chat message)
    max_items: int = 256  # items per batched native request, candidates per rank-group request
    max_new_tokens: int = 1024  # cap on max_tokens in chat completions
    max_logprobs: int = 20  # cap on top_logprobs, as in vLLM's --max-logprobs
    served_model_name: str = "unireward"
    graceful_timeout_s: float = 30.0  # how long shutdown waits for in-flight requests

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_queue", "max_request_bytes", "max_pixels", "max_frames",
                     "max_prompt_chars", "max_items", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ServeConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.timeout_s <= 0 or self.cache_size < 0 or self.max_logprobs < 0:
            raise ConfigError("ServeConfig: max_wait_ms, cache_size and max_logprobs must be >= 0, timeout_s > 0")
        roots = []
        for r in self.allowed_roots:
            p = Path(r).expanduser().resolve()
            if not p.is_dir():
                raise ConfigError(f"--allowed-root {r}: not a directory")
            roots.append(str(p))
        self.allowed_roots = roots
