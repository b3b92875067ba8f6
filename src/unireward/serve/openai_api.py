"""The OpenAI-compatible chat completions API, as far as a judge needs it (and as vLLM extends it).

Accepted: `messages` with system/user turns whose content is a string or a list of parts
(`text`, `image_url`, `video_url`; URLs are data URLs, local paths under the allowed roots, or http(s) when
enabled), optionally ending in an assistant message that the reply continues (`continue_final_message: true`,
`add_generation_prompt: false`, as in vLLM); `max_tokens` / `max_completion_tokens`, `stop`,
`include_stop_str_in_output`, `logprobs`, `top_logprobs`, `n` (1 only). Decoding is always greedy, so
`temperature`, `top_p`, `seed` and similar fields are accepted and have no effect; other unknown fields are
ignored. What would change the answer and cannot be honoured is refused, never ignored: streaming, tools and
tool_choice, a response_format other than text, another model's name (404). The conversation is flattened into
one user turn (system text first), which is what a judge prompt is.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from ..backends.base import ChatInput
from .config import ServeConfig
from .inputs import RequestError, check_text


def _flag(body: dict, name: str) -> bool:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise RequestError(422, f"{name} must be true or false, got {value!r}")
    return bool(value)


def parse_chat(body: Any, cfg: ServeConfig) -> dict:
    """Validate a chat completions body. Returns {"parts": [("text", str) | ("image"|"video", (spec, field))],
    "prefix", "max_tokens", "top_logprobs", "stop", "include_stop", "warnings"}; media specs stay unread (their
    URLs are fetched, their files opened and decoded off the event loop)."""
    if not isinstance(body, dict):
        raise RequestError(422, "the body must be a JSON object")
    model = body.get("model")
    if model is not None and model != cfg.served_model_name:
        raise RequestError(404, f"model {model!r} is not served here; this server serves "
                                f"{cfg.served_model_name!r} (GET /v1/models)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(422, "messages must be a non-empty list")
    if _flag(body, "stream"):
        raise RequestError(400, "stream=true is not supported; send stream=false")
    if body.get("tools") or body.get("tool_choice") not in (None, "none", "auto"):
        raise RequestError(422, "tools and tool_choice are not supported: a judge answers in its own format; "
                                "send neither")
    fmt = body.get("response_format")
    if fmt is not None and fmt != {"type": "text"}:
        raise RequestError(422, f"response_format {fmt!r} is not supported: a judge answers in its task's format "
                                "(parsed by unireward); send no response_format, or {\"type\": \"text\"}")
    n = body.get("n", 1)
    if n not in (1, None) or isinstance(n, bool):
        raise RequestError(400, "n must be 1 (decoding is greedy, so every choice would be the same)")
    prefix = ""
    last = messages[-1]
    continue_final = _flag(body, "continue_final_message")
    if isinstance(last, dict) and last.get("role") == "assistant":
        if not continue_final:
            raise RequestError(400, "the conversation ends with an assistant message: set continue_final_message"
                                    "=true (and add_generation_prompt=false) to continue it as an answer prefix")
        prefix = check_text(_text_only(last.get("content"), "messages[-1]"), "messages[-1].content", cfg)
        messages = messages[:-1]
    elif continue_final:
        raise RequestError(400, "continue_final_message=true needs a final assistant message")
    parts: list[tuple[str, Any]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "developer"):
            raise RequestError(400, f"messages[{i}]: only system and user turns (plus one final assistant prefix) "
                                    "are supported; a judge call is a single user turn")
        content = m.get("content")
        field = f"messages[{i}].content"
        if isinstance(content, str):
            parts.append(("text", check_text(content, field, cfg)))
            continue
        if not isinstance(content, list):
            raise RequestError(422, f"{field} must be a string or a list of parts")
        for j, part in enumerate(content):
            pf = f"{field}[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                parts.append(("text", check_text(part.get("text"), pf + ".text", cfg)))
            elif kind in ("image_url", "video_url"):
                ref = part.get(kind)
                url = ref.get("url") if isinstance(ref, dict) else ref
                if not isinstance(url, str):
                    raise RequestError(422, f"{pf}.{kind}.url must be a string")
                parts.append((kind[:5], (url, pf)))
            else:
                raise RequestError(422, f"{pf}: unsupported content part type {kind!r}; use text, image_url or "
                                        "video_url")
        if m.get("role") != "user" and parts and parts[-1][0] == "text":
            parts[-1] = ("text", parts[-1][1] + "\n")
    max_tokens, warnings = _max_tokens(body, cfg)
    top = None
    if _flag(body, "logprobs"):
        top = body.get("top_logprobs")
        top = 0 if top is None else top
        if not isinstance(top, int) or isinstance(top, bool) or top < 0:
            raise RequestError(422, f"top_logprobs must be a non-negative integer, got {top!r}")
        if top > cfg.max_logprobs:
            raise RequestError(413, f"top_logprobs={top} is over the server's limit of {cfg.max_logprobs} "
                                    "(max_logprobs)")
    stop = body.get("stop")
    stop = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 16:
        raise RequestError(422, "stop must be a string or a list of at most 16 strings")
    if any(not s for s in stop):
        raise RequestError(422, "stop strings must not be empty (an empty string would stop at the first token)")
    stop = [check_text(s, f"stop[{i}]", cfg) for i, s in enumerate(stop)]
    return {"parts": parts, "prefix": prefix, "max_tokens": max_tokens, "top_logprobs": top,
            "stop": tuple(stop), "include_stop": _flag(body, "include_stop_str_in_output"), "warnings": warnings}


def _max_tokens(body: dict, cfg: ServeConfig) -> tuple[int, list[str]]:
    """The generation budget: the request's max_completion_tokens / max_tokens, capped to the server's budget
    (`serve --max-new-tokens`) as OpenAI-compatible servers do, with a warning saying so; 256 when not given."""
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    value = body.get(name)
    if value is None:
        return min(256, cfg.max_new_tokens), []
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RequestError(422, f"{name} must be a positive integer, got {value!r}")
    if value > cfg.max_new_tokens:
        return cfg.max_new_tokens, [f"{name}={value} was capped to this server's budget of {cfg.max_new_tokens} "
                                    "tokens (raise it with `unireward serve --max-new-tokens N`)"]
    return value, []


def _text_only(content: Any, field: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    raise RequestError(422, f"{field}: the assistant prefix must be text")


def to_chat_input(parts: list[tuple[str, Any]]) -> ChatInput:
    out: list[Any] = []
    for kind, value in parts:
        if kind == "text" and out and isinstance(out[-1], str):
            out[-1] += value
        else:
            out.append(value)
    return ChatInput(out)


def completion(result: dict, model: str, want_logprobs: bool, warnings: list[str] | None = None) -> dict:
    logprobs = None
    if want_logprobs and result.get("tokens") is not None:
        logprobs = {"content": [
            {"token": t["token"], "logprob": t["logprob"], "bytes": list(t["token"].encode()),
             "top_logprobs": [{"token": s, "logprob": v, "bytes": list(s.encode())} for s, v in t["top"]]}
            for t in result["tokens"]]}
    prompt_tokens = result.get("prompt_tokens", 0)
    completion_tokens = result.get("completion_tokens", 0)
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex, "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": result["text"]},
                     "logprobs": logprobs, "finish_reason": result["finish_reason"],
                     "stop_reason": result.get("stop_reason")}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
        **({"warnings": list(warnings)} if warnings else {}),  # e.g. max_tokens capped to the server's budget
    }
