"""vLLM's offline engine in process: `RewardModel.load(path_or_id, backend="vllm", tensor_parallel_size=2)`.

The engine runs with prefix caching and vLLM's multimodal processor cache on, so the instruction and the first
image that the rows of a group share are prefilled once. Prompts are rendered here exactly as the transformers
backend renders them (`hf.chat_text`: the model's chat template with the judge spec's chat template options),
and handed to the engine as text plus `multi_modal_data`: images as PIL images, videos as their already sampled
frames (T, H, W, 3) with metadata saying so (`do_sample_frames: false`), so the engine sees the frames the judge's
VideoPolicy chose. Decoding is greedy (temperature 0).

Request types:
- `generate`: the prompt (plus a forced `prefix`) continued greedily up to `max_new_tokens` or a stop string;
- `choice_probs`: the prompt plus the answer prefix, continued `lookahead` tokens with the top-20
  log-probabilities at each; the choices are read by `choices.read_choice_trie` (a branch off the greedy path
  costs one more engine call for that row);
- `think_then_read`: the reasoning generated with log-probabilities; the choices are read from the tokens right
  after the format's stop in that same output (the HTTP backend's one-request reading, `openai.py`).

Every call goes to the engine as one batch (the engine schedules it). Data parallelism: `data_parallel_size`
engines in one process is vLLM's own option where its build supports it; across machines, run one engine per
shard (see the README's scale-out section).
"""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import BackendError, PromptTooLongError
from .base import UNREADABLE, Backend, ChatInput, ReasonedChoice, unreached
from .choices import read_choice_trie, split_at_stop
from .hf import chat_text


class VLLMBackend(Backend):
    name = "vllm"
    supports_probs = True

    def __init__(self, llm: Any, processor: Any, model_id: str = "", chat_template_kwargs: dict | None = None,
                 top_logprobs: int = 20, lookahead: int = 4, branch_floor: float = 1e-3):
        self.llm = llm
        self.processor = processor  # for the chat template only (the engine has its own processor)
        self.model_id = model_id
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.top_logprobs = top_logprobs
        self.lookahead = max(1, int(lookahead))
        self.branch_floor = branch_floor  # as the OpenAI backend's: branches less likely than this are not read
        self.calls = 0  # engine calls (each a batch)
        config = getattr(getattr(llm, "llm_engine", None), "model_config", None)
        self.max_length = getattr(config, "max_model_len", None)

    @classmethod
    def load(cls, path: str, *, dtype: str | None = "auto", chat_template_kwargs: dict | None = None,
             tensor_parallel_size: int = 1, data_parallel_size: int = 1, max_model_len: int | None = None,
             limit_mm_per_prompt: dict | None = None, seed: int = 0, top_logprobs: int = 20, lookahead: int = 4,
             branch_floor: float = 1e-3, **engine_kwargs: Any) -> "VLLMBackend":
        """An engine for `path` (a folder or hub id). Other keyword arguments go to `vllm.LLM` (e.g.
        `gpu_memory_utilization`, `enforce_eager`, `kv_cache_memory_bytes`)."""
        try:
            from vllm import LLM
        except ImportError as e:
            raise BackendError(f"backend='vllm' needs vLLM installed in this environment ({e}); install it "
                               "(`bash install.sh --engine vllm` makes .venv-vllm with a CPU build) or use "
                               "backend='openai' against a vLLM server") from None
        from transformers import AutoProcessor

        kwargs: dict[str, Any] = dict(model=path, dtype=dtype or "auto", tensor_parallel_size=tensor_parallel_size,
                                      enable_prefix_caching=True, seed=seed,
                                      limit_mm_per_prompt=limit_mm_per_prompt or {"image": 8, "video": 2})
        if data_parallel_size != 1:
            kwargs["data_parallel_size"] = data_parallel_size
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        kwargs.update(engine_kwargs)
        llm = LLM(**kwargs)
        processor = AutoProcessor.from_pretrained(path)
        return cls(llm, processor, model_id=path, chat_template_kwargs=chat_template_kwargs,
                   top_logprobs=top_logprobs, lookahead=lookahead, branch_floor=branch_floor)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_id}

    # -- inputs ------------------------------------------------------------------------------------------------
    def prompt_text(self, x: ChatInput) -> str:
        """The prompt string (the transformers backend's, `hf.chat_text`)."""
        return chat_text(self.processor, x.messages(), self.chat_template_kwargs)

    def _prompt(self, x: ChatInput, prefix: str = "") -> dict:
        data: dict[str, Any] = {}
        if x.images:
            data["image"] = list(x.images)
        if x.videos:
            data["video"] = [(v.to_array(), {"fps": v.fps, "frames_indices": list(range(len(v.frames))),
                                             "total_num_frames": len(v.frames), "do_sample_frames": False})
                             for v in x.videos]
        out: dict[str, Any] = {"prompt": self.prompt_text(x) + prefix}
        if data:
            out["multi_modal_data"] = data
        return out

    def _run(self, prompts: list[dict], params: Any) -> list[Any]:
        if not prompts:
            return []
        self.calls += 1
        try:
            return self.llm.generate(prompts, params, use_tqdm=False)
        except ValueError as e:  # vLLM refuses prompts over max_model_len with a ValueError
            if "longer than the maximum model length" in str(e) or "max_model_len" in str(e):
                raise PromptTooLongError(f"{e}; lower the video frame count or pixel budget") from None
            raise

    @staticmethod
    def _params(**kw: Any) -> Any:
        from vllm import SamplingParams

        return SamplingParams(temperature=0.0, **kw)

    def _token(self, token_id: int, decoded: str | None) -> str:
        """A token's text; special tokens (the end of turn, which decides "1" against "10") by name, as the
        engine's detokeniser leaves them out."""
        if token_id in self._special:
            return self._special[token_id]
        return decoded or ""

    @property
    def _special(self) -> dict[int, str]:
        if not hasattr(self, "_special_ids"):
            tok = getattr(self.processor, "tokenizer", self.processor)
            ids = list(getattr(tok, "all_special_ids", []) or [])
            self._special_ids = dict(zip(ids, tok.convert_ids_to_tokens(ids))) if ids else {}
        return self._special_ids

    def _entries(self, completion: Any) -> list[dict]:
        """The output's tokens with their top log-probabilities, as the OpenAI API reports them."""
        out = []
        for token_id, top in zip(completion.token_ids, completion.logprobs or []):
            chosen = top.get(token_id)
            ranked = sorted(top.items(), key=lambda kv: -kv[1].logprob)[: self.top_logprobs]
            out.append({"token": self._token(token_id, chosen.decoded_token if chosen is not None else ""),
                        "logprob": chosen.logprob if chosen is not None else float("-inf"),
                        "top_logprobs": [{"token": self._token(i, lp.decoded_token), "logprob": lp.logprob}
                                         for i, lp in ranked]})
        return out

    # -- request types -----------------------------------------------------------------------------------------
    def generate(self, inputs, max_new_tokens=256, stop=None, prefix=""):
        stop = list(stop or [])
        params = self._params(max_tokens=max_new_tokens, stop=stop or None, include_stop_str_in_output=bool(stop))
        outs = self._run([self._prompt(x, prefix) for x in inputs], params)
        return [o.outputs[0].text for o in outs]

    def choice_probs(self, inputs, prefix, choices):
        prefixes = [prefix] * len(inputs) if isinstance(prefix, str) else list(prefix)
        params = self._params(max_tokens=self.lookahead, logprobs=self.top_logprobs)
        outs = self._run([self._prompt(x, p.rstrip()) for x, p in zip(inputs, prefixes)], params)
        return [self._read(x, p, list(choices), self._entries(o.outputs[0]))
                for x, p, o in zip(inputs, prefixes, outs)]

    def think_then_read(self, inputs, stop, choices, max_new_tokens=256):
        params = self._params(max_tokens=max_new_tokens + self.lookahead, logprobs=self.top_logprobs)
        outs = self._run([self._prompt(x) for x in inputs], params)
        result = []
        for x, o in zip(inputs, outs):
            entries = self._entries(o.outputs[0])
            text = o.outputs[0].text
            if stop not in text:
                result.append(ReasonedChoice(text, None, unreached(stop, max_new_tokens)))
                continue
            split = split_at_stop(text, [e["token"] for e in entries], stop)
            if split is None:  # read by continuing the reasoning through the stop
                cut = text[: text.index(stop) + len(stop)]
                row = self.choice_probs([x], cut, list(choices))[0]
            elif split[1] > max_new_tokens:  # the stop came only in the read-ahead tokens: over the budget
                result.append(ReasonedChoice(split[0], None, unreached(stop, max_new_tokens)))
                continue
            else:
                cut, k = split
                row = self._read(x, cut, list(choices), entries[k:])
            result.append(ReasonedChoice(cut, row, None if row is not None else UNREADABLE))
        return result

    def _read(self, x: ChatInput, prefix: str, choices: list[str], seen: Sequence[dict]) -> list[float] | None:
        """P(choice) after `prefix` (an answer prefix, or the reasoning through its stop) from `seen`, the entries
        right after its stripped end, asking the engine to continue from a branch only where the greedy tokens do
        not cover it."""
        base = prefix.rstrip()

        def fetch(node: str) -> list[dict]:
            params = self._params(max_tokens=self.lookahead, logprobs=self.top_logprobs)
            (out,) = self._run([self._prompt(x, base + node)], params)
            return self._entries(out.outputs[0])

        return read_choice_trie(prefix, choices, fetch, seen, self.branch_floor)
