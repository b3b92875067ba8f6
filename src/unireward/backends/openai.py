"""Judging through any OpenAI-compatible server: vLLM, SGLang, or `unireward serve`.

    rm = RewardModel.load("http://gpu1:8000/v1,http://gpu2:8000/v1", backend="openai",
                          served_model="UnifiedReward-qwen-7b", concurrency=16)

Requests run `concurrency` at a time per endpoint (threads over one pooled httpx client), go to the least busy
endpoint (or round robin), and are retried with exponential backoff on connection errors, 429 and 5xx (the
failing endpoint is rested for a few seconds). Decoding is greedy (`temperature: 0`) always.

Decisions from log-probabilities (`choice_probs`): the answer prefix is forced as a final assistant message
(`continue_final_message: true, add_generation_prompt: false`, as vLLM supports; trailing spaces of the prefix
are moved into the choices so that the server tokenises the prefix naturally), with `logprobs: true,
top_logprobs: 20`. The choices are walked as a trie over the returned tokens: at each branching point (e.g.
" Image" / " Both", then "1" / "2") the choices consistent with each top token are kept and that token's
log-probability is added (when several top tokens start the same choices, the longest, i.e. the BPE
tokenisation of the choice text); tokens shared by all remaining choices count as certain, as in the
transformers backend; a choice that is a prefix of another ("1" and "10") ends with the end-of-turn token
(`choices.read_choice_trie`). Cheaper than one request per branching point: each request decodes `lookahead`
greedy tokens (default 4) and the top log-probabilities at every one of them are used, so when the greedy answer passes
through the later branching points (the usual case for a trained judge) one request decides a pair or a score.
A branch off the greedy path less likely than `branch_floor` (default 1e-3) is not requested: its mass is
shared evenly by its choices, so a probability is off by less than that (`branch_floor=0` reads every branch).
Choices absent from the top-k at a branching point get probability 0 (the others share the probability); when
none is there, the model writes its answer and the choice it names is taken, and when it names none the row is
not readable (None: the judge reports it unparsed, never a uniform guess). Without log-probabilities (the server
omits them, or `use_logprobs=False`), `supports_probs` is False and the judge generates and parses.

Think, then read (judges that reason before their verdict; `think_then_read`): one request generates the
reasoning greedily (temperature 0, `max_tokens` = the judge's budget plus `lookahead`) with `logprobs: true,
top_logprobs: 20`; the choices are read from the top log-probabilities of the tokens right after the format's
`reasoning_stop` in that same response, walked as a trie as above. The verdict's first token alone does not
always decide (" Image" is shared by "Image 1 ..." and "Image 2 ..."), which the tokens after it settle when the
greedy answer passes through them; a branch off the greedy path costs one more request (the reasoning sent back as
the final assistant message). Where the stop does not end on a token boundary of the response, the reasoning is
cut at the stop and read with a second request. `read_in_generation=False` always reads in a second request: the
reasoning is then generated without log-probabilities, which on vLLM's CPU build costs about as much per token as
the generation itself (the second request's prompt is in the server's prefix cache): two cheap requests instead
of one dearer one (benchmarks/engine_throughput.py measures both).

Each distinct image (or frame) is encoded once per call, however many of the call's requests show it.

Chat template options (`chat_template_kwargs=`, e.g. `{"enable_thinking": false}` for Qwen3.5 judges) go with
every request as `"chat_template_kwargs"`, which vLLM and SGLang pass to the chat template.

Media go as base64 data URLs: images as PNG `image_url`s (or JPEG at `jpeg_quality` with `image_format="jpeg"`,
as the released judges' own client sends them, frames of videos sent as images included); videos as
`video_url`s holding the already sampled frames, `data:video/jpeg;base64,<frame>,<frame>,...`
(vLLM's frame-list form; start vLLM with `--media-io-kwargs '{"video": {"num_frames": -1}}'` so it keeps all of
them), or lossless `data:video/png;...` with `video_format="png"` (unireward's server only). The frames are
exactly those the judge's VideoPolicy chose, so local and remote judges see the same frames.
"""

from __future__ import annotations

import base64
import io
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from ..errors import BackendError, PromptTooLongError
from .base import UNREADABLE, Backend, ChatInput, ReasonedChoice, unreached
from .choices import read_choice_trie, split_at_stop

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_GREEDY_KEYS = ("temperature", "do_sample", "top_p", "top_k")  # decoding is greedy whatever extra_body says
_CONTEXT_HINTS = ("context length", "maximum context", "too long", "max_model_len", "prompt is too long")


def _normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.endswith("/chat/completions"):
        url = url[: -len("/chat/completions")]
    return url if url.endswith("/v1") else url + "/v1"


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, base_url_or_urls: str | Sequence[str], served_model: str | None = None,
                 api_key: str | None = None, concurrency: int = 8, timeout: float = 60.0, retries: int = 3,
                 backoff: float = 0.5, balance: str = "least-busy", use_logprobs: bool | None = None,
                 top_logprobs: int = 20, lookahead: int = 4, video_format: str = "jpeg", jpeg_quality: int = 95,
                 extra_body: dict | None = None, model: str | None = None, transport: Any = None,
                 image_format: str = "png", chat_template_kwargs: dict | None = None, branch_floor: float = 1e-3,
                 read_in_generation: bool = True):
        import httpx

        urls = base_url_or_urls.split(",") if isinstance(base_url_or_urls, str) else list(base_url_or_urls)
        self.urls = [_normalise_url(u) for u in urls if u.strip()]
        if not self.urls:
            raise BackendError("OpenAIBackend needs at least one base URL, e.g. http://127.0.0.1:8000/v1")
        if balance not in ("least-busy", "round-robin"):
            raise ValueError("balance must be least-busy or round-robin")
        if video_format not in ("jpeg", "png") or image_format not in ("jpeg", "png"):
            raise ValueError("image_format and video_format must be jpeg or png")
        self.served_model = served_model or model
        self.concurrency = max(1, int(concurrency))
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.balance = balance
        self.use_logprobs = use_logprobs
        self.top_logprobs = top_logprobs
        self.lookahead = max(1, int(lookahead))
        self.branch_floor = branch_floor  # a branch off the greedy path less likely than this is not requested
        # think-then-read: read the verdict from the response that wrote the reasoning (one request, log-probabilities
        # of every generated token), or generate without them and read in a second, prefix-cached request
        self.read_in_generation = read_in_generation
        self.video_format = video_format
        self.image_format = image_format
        self.jpeg_quality = jpeg_quality
        # sent with every request, as vLLM and SGLang accept it (e.g. Qwen3.5 judges: enable_thinking=False)
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.extra_body = {k: v for k, v in (extra_body or {}).items() if k not in _GREEDY_KEYS}
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        n = self.concurrency * len(self.urls)
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport,
                                    limits=httpx.Limits(max_connections=n, max_keepalive_connections=n))
        self._pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="unireward-openai")
        self._lock = threading.Lock()
        self._inflight = [0] * len(self.urls)
        self._rested_until = [0.0] * len(self.urls)
        self._turn = 0
        self._probe: bool | None = None
        self.requests = 0  # requests sent, retries included
        self._encoded: dict[tuple[int, str], tuple[Any, str]] = {}  # this call's encoded images, by object
        self._encoding = threading.Lock()

    # -- plumbing ----------------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "endpoints": self.urls, "model": self.served_model}

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._client.close()

    def _pick(self, avoid: int | None) -> int:
        with self._lock:
            now = time.monotonic()
            order = [(self._turn + k) % len(self.urls) for k in range(len(self.urls))]
            usable = [i for i in order if i != avoid and self._rested_until[i] <= now] or \
                     [i for i in order if i != avoid] or order
            if self.balance == "least-busy":
                usable.sort(key=lambda i: self._inflight[i])  # stable: round robin among equals
            i = usable[0]
            self._turn = (i + 1) % len(self.urls)
            self._inflight[i] += 1
            return i

    def _post(self, path: str, payload: dict) -> dict:
        import httpx

        last = "no attempt"
        avoid = None
        for attempt in range(self.retries + 1):
            i = self._pick(avoid)
            url = self.urls[i] + path
            retry_after = None
            try:
                self.requests += 1
                r = self._client.post(url, json=payload)
            except httpx.TransportError as e:
                last = f"{url}: {type(e).__name__}: {e}"
                ok = False
            else:
                ok = r.status_code < 400
                if ok:
                    try:
                        return r.json()
                    except ValueError:
                        raise BackendError(f"{url} answered with a body that is not JSON") from None
                message = _error_message(r)
                if r.status_code not in _RETRY_STATUS:
                    if r.status_code in (400, 413, 422) and any(h in message.lower() for h in _CONTEXT_HINTS):
                        raise PromptTooLongError(f"{url}: {message}")
                    raise BackendError(f"{url} refused the request ({r.status_code}): {message}")
                last = f"{url}: HTTP {r.status_code}: {message}"
                retry_after = r.headers.get("retry-after")
            finally:
                with self._lock:
                    self._inflight[i] -= 1
            avoid = i if len(self.urls) > 1 else None
            if attempt == self.retries:
                break
            delay = self.backoff * (2 ** attempt) * (0.5 + random.random())
            if retry_after and retry_after.replace(".", "", 1).isdigit():
                delay = max(delay, min(float(retry_after), 30.0))
            with self._lock:
                self._rested_until[i] = time.monotonic() + delay
            time.sleep(delay)
        raise BackendError(f"the judge server failed after {self.retries + 1} attempts; last error: {last}")

    def _model(self) -> str:
        if self.served_model is None:
            data = self._get_models()
            if not data:
                raise BackendError(f"{self.urls[0]}/models lists no model; pass served_model=")
            self.served_model = data[0]["id"]
        return self.served_model

    def _get_models(self) -> list:
        r = self._client.get(self.urls[0] + "/models")
        if r.status_code >= 400:
            raise BackendError(f"{self.urls[0]}/models: HTTP {r.status_code}: {_error_message(r)}")
        return r.json().get("data", [])

    # -- messages ----------------------------------------------------------------------------------------------
    def _encode_image(self, im, fmt: str) -> str:
        buf = io.BytesIO()
        if fmt == "jpeg":
            im.convert("RGB").save(buf, "JPEG", quality=self.jpeg_quality)
        else:
            im.save(buf, "PNG")
        return base64.b64encode(buf.getvalue()).decode()

    def _encoded_once(self, im: Any, fmt: str) -> str:
        """`im` encoded as `fmt`, once per call however many requests show it (a group's candidate appears in
        every pair it is in); the cache holds the image itself so that its id stays unique until the next call."""
        key = (id(im), fmt)
        with self._encoding:  # the call's requests run in threads: one of them encodes, the others wait for it
            hit = self._encoded.get(key)
            if hit is None or hit[0] is not im:
                hit = (im, self._encode_image(im, fmt))
                self._encoded[key] = hit
        return hit[1]

    def _new_call(self) -> None:
        self._encoded = {}

    def _media_part(self, p: Any) -> dict:
        from ..media import Video

        if isinstance(p, Video):
            frames = ",".join(self._encoded_once(f, self.video_format) for f in p.frames)
            return {"type": "video_url", "video_url": {"url": f"data:video/{self.video_format};base64,{frames}"}}
        url = f"data:image/{self.image_format};base64," + self._encoded_once(p, self.image_format)
        return {"type": "image_url", "image_url": {"url": url}}

    def _content(self, x: ChatInput) -> list[dict]:
        return x.messages(media=self._media_part)[0]["content"]

    def request_body(self, x: ChatInput, prefix: str = "", max_tokens: int = 512, **extra) -> dict:
        """The chat-completions body this backend sends for `x` (after `prefix`, forced as the answer's start)."""
        return self._payload(self._content(x), prefix, max_tokens, **extra)

    def _payload(self, content: list[dict], prefix: str, max_tokens: int, **extra) -> dict:
        messages: list[dict] = [{"role": "user", "content": content}]
        payload: dict[str, Any] = {"model": self._model(), "messages": messages, "max_tokens": max_tokens,
                                   "temperature": 0.0, "n": 1}
        if prefix:
            messages.append({"role": "assistant", "content": prefix})
            payload.update(continue_final_message=True, add_generation_prompt=False)
        if self.chat_template_kwargs:
            payload["chat_template_kwargs"] = dict(self.chat_template_kwargs)
        payload.update(self.extra_body)
        payload.update(extra)
        return payload

    def _map(self, fn, items: Sequence[Any]) -> list:
        if len(items) <= 1:
            return [fn(x) for x in items]
        return list(self._pool.map(fn, items))

    # -- generation --------------------------------------------------------------------------------------------
    def generate(self, inputs, max_new_tokens=256, stop=None, prefix=""):
        stop = list(stop or [])
        self._new_call()

        def one(x: ChatInput) -> str:
            extra = {"stop": stop, "include_stop_str_in_output": True} if stop else {}
            data = self._post("/chat/completions", self._payload(self._content(x), prefix, max_new_tokens, **extra))
            choice = (data.get("choices") or [{}])[0]
            text = (choice.get("message") or {}).get("content") or ""
            reason = choice.get("stop_reason")
            if isinstance(reason, str) and reason in stop and reason not in text:
                text += reason  # the server trimmed the stop string; the parser needs the verdict line
            if prefix and text.startswith(prefix):
                text = text[len(prefix):]
            return text

        return self._map(one, list(inputs))

    # -- choice probabilities ------------------------------------------------------------------------------------
    @property
    def supports_probs(self) -> bool:  # type: ignore[override]
        if self.use_logprobs is not None:
            return self.use_logprobs
        if self._probe is None:
            try:
                data = self._post("/chat/completions", self._payload(
                    [{"type": "text", "text": "Say yes."}], "", 1, logprobs=True, top_logprobs=1))
                lp = ((data.get("choices") or [{}])[0].get("logprobs") or {}).get("content")
                self._probe = bool(lp)
            except BackendError:
                self._probe = False
        return self._probe

    def choice_probs(self, inputs, prefix, choices):
        if not self.supports_probs:
            return None
        self._new_call()
        prefixes = [prefix] * len(inputs) if isinstance(prefix, str) else list(prefix)
        return self._map(lambda xp: self._choice_row(xp[0], xp[1], list(choices)), list(zip(inputs, prefixes)))

    # -- think, then read: one request per decision ------------------------------------------------------------
    def think_then_read(self, inputs, stop, choices, max_new_tokens=256):
        """One request per input where the greedy path passes through the verdict: the reasoning is generated
        with `logprobs`, and the choices are read from the top log-probabilities of the tokens right after the
        stop in that same response (a branch off the greedy path costs one more request, as in `choice_probs`).
        Where the stop does not end on a token boundary of the response (or its tokens do not spell its text),
        the reasoning is cut at the stop and read with a second request (`choices.split_at_stop`)."""
        if not self.supports_probs or not self.read_in_generation:
            return super().think_then_read(inputs, stop, choices, max_new_tokens)
        self._new_call()
        return self._map(lambda x: self._think_row(x, stop, list(choices), max_new_tokens), list(inputs))

    def _think_row(self, x: ChatInput, stop: str, choices: list[str], max_new_tokens: int) -> ReasonedChoice:
        content = self._content(x)
        data = self._post("/chat/completions", self._payload(
            content, "", max_new_tokens + self.lookahead, logprobs=True, top_logprobs=self.top_logprobs))
        choice = (data.get("choices") or [{}])[0]
        text = (choice.get("message") or {}).get("content") or ""
        entries = (choice.get("logprobs") or {}).get("content") or []
        if stop not in text:
            return ReasonedChoice(text, None, unreached(stop, max_new_tokens))
        split = split_at_stop(text, [e.get("token", "") for e in entries], stop)
        if split is None:  # read by continuing the reasoning through the stop (a second request)
            cut = text[: text.index(stop) + len(stop)]
            row = self._choice_row(x, cut, choices, content=content)
        elif split[1] > max_new_tokens:  # the stop came only in the read-ahead tokens: over the judge's budget
            return ReasonedChoice(split[0], None, unreached(stop, max_new_tokens))
        else:
            cut, k = split
            row = self._choice_row(x, cut, choices, content=content, seen=entries[k:])
        return ReasonedChoice(cut, row, None if row is not None else UNREADABLE)

    def _choice_row(self, x: ChatInput, prefix: str, choices: list[str], content: list[dict] | None = None,
                    seen: Sequence[dict] = ()) -> list[float] | None:
        """P(choice) after `prefix` (`choices.read_choice_trie`); `seen`: the log-probability entries a response
        already holds for the tokens right after the prefix. None: no choice was among the top tokens and the
        written answer names none."""
        base = prefix.rstrip()
        content = content if content is not None else self._content(x)

        def fetch(node: str) -> list[dict]:
            data = self._post("/chat/completions", self._payload(
                content, base + node, self.lookahead, logprobs=True, top_logprobs=self.top_logprobs))
            return ((data.get("choices") or [{}])[0].get("logprobs") or {}).get("content") or []

        row = read_choice_trie(prefix, choices, fetch, seen, self.branch_floor)
        return row if row is not None else self._generated_choice(x, prefix, choices)

    def _generated_choice(self, x: ChatInput, prefix: str, choices: list[str]) -> list[float] | None:
        """No choice reached the top log-probabilities: let the model write the answer and match it; None (not
        readable) when it names no choice."""
        text = self.generate([x], max_new_tokens=64, prefix=prefix)[0].strip()
        hits = [i for i, c in enumerate(choices) if text.startswith(c.strip())]
        if len(hits) == 1:
            return [1.0 if i == hits[0] else 0.0 for i in range(len(choices))]
        return None


def _error_message(r) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:500]
    if isinstance(body, dict):
        err = body.get("error") or body.get("detail") or body.get("message") or body
        if isinstance(err, dict):
            return str(err.get("message") or err)
        return str(err)[:500]
    return str(body)[:500]
