"""What a micro-batch runs: one RewardModel (or backend) call per batch, in the batcher's worker thread (which
splits a batch whose call raises, so that the item at fault fails alone).

Batch keys name the call and its options, so every item of a batch shares them:
    ("rank", task, both_orders, dimensions)            -> RewardModel.rank_batch
    ("score", task, dimensions)                        -> RewardModel.score_batch
    ("group", task, schedule, both_orders, seed, rounds) -> RewardModel.rank_group per item
    ("chat", prefix, max_tokens, top_logprobs, stop)   -> one batched generation (with log-probabilities)
"""

from __future__ import annotations

from typing import Any, Sequence

from ..backends.base import ChatInput
from ..judge import RewardModel


class Engine:
    def __init__(self, rm: RewardModel):
        self.rm = rm

    def __call__(self, key: tuple, payloads: list[Any]) -> list[Any]:
        kind = key[0]
        if kind == "rank":
            _, task, both_orders, dimensions = key
            return [r.to_dict() for r in self.rm.rank_batch(payloads, task=task, both_orders=both_orders,
                                                            dimensions=dimensions)]
        if kind == "score":
            _, task, dimensions = key
            return [r.to_dict() for r in self.rm.score_batch(payloads, task=task, dimensions=dimensions)]
        if kind == "group":
            _, task, schedule, both_orders, seed, rounds = key
            out = []
            for prompt, candidates, media in payloads:
                try:
                    out.append(self.rm.rank_group(prompt, candidates, task=task, media=media, schedule=schedule,
                                                  both_orders=both_orders, seed=seed, rounds=rounds).to_dict())
                except Exception as e:  # one bad group does not fail the others
                    out.append(e)
            return out
        if kind == "reward":  # ("reward", task, mode, both_orders, seed) -> RewardModel.group_reward_batch
            from .reward_api import reward_batch

            return reward_batch(self.rm, key, payloads)
        if kind == "chat":
            _, prefix, max_tokens, top_logprobs, stop, include_stop = key
            return chat_batch(self.rm.backend, payloads, prefix, max_tokens, top_logprobs, list(stop), include_stop)
        raise ValueError(f"unknown batch kind {kind!r}")


def chat_batch(backend, inputs: Sequence[ChatInput], prefix: str, max_tokens: int, top_logprobs: int | None,
               stop: list[str], include_stop: bool) -> list[dict]:
    """Greedy completions after an optional forced `prefix`. Returns per input {"text", "finish_reason",
    "stop_reason", "tokens" (list of {token, logprob, top}) or None, "prompt_tokens"}."""
    from ..backends.hf import HFBackend

    if isinstance(backend, HFBackend):
        return _hf_chat(backend, inputs, prefix, max_tokens, top_logprobs, stop, include_stop)
    texts = backend.generate(list(inputs), max_new_tokens=max_tokens, stop=stop or None, prefix=prefix)
    out = []
    for text in texts:
        text, reason, matched = _cut(text, stop, include_stop)
        out.append({"text": text, "finish_reason": reason, "stop_reason": matched, "tokens": None,
                    "prompt_tokens": 0})
    return out


def _cut(text: str, stop: list[str], include_stop: bool) -> tuple[str, str, str | None]:
    hits = [(text.find(s), s) for s in stop if s and s in text]
    if not hits:
        return text, "stop", None
    pos, s = min(hits)
    return (text[: pos + len(s)] if include_stop else text[:pos]), "stop", s


def _hf_chat(backend, inputs, prefix, max_tokens, top_logprobs, stop, include_stop) -> list[dict]:
    import torch

    tok = backend.tokenizer
    eos = backend.model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
    eos_ids.add(tok.eos_token_id)
    results: list[dict | None] = [None] * len(inputs)
    for batch, start, prompt_lens, out in backend.generate_batches(inputs, max_tokens, stop, prefix,
                                                                   output_logits=top_logprobs is not None):
        seqs = out.sequences[:, start:].cpu()
        logps = [torch.log_softmax(step.float(), dim=-1).cpu() for step in out.logits] if out.logits else []
        for b, i in enumerate(batch):
            ids, tokens, text, finish, matched = [], [], "", "length", None
            for pos, t in enumerate(seqs[b].tolist()):
                if t in eos_ids:
                    finish = "stop"
                    break
                ids.append(t)
                if logps:
                    row = logps[pos][b]
                    entry = {"token": tok.decode([t]), "logprob": float(row[t])}
                    k = min(top_logprobs or 0, row.shape[-1])
                    if k:
                        vals, idx = row.topk(k)
                        entry["top"] = [(tok.decode([j]), float(v)) for v, j in zip(vals.tolist(), idx.tolist())]
                    else:
                        entry["top"] = []
                    tokens.append(entry)
                text = tok.decode(ids, skip_special_tokens=True)
                if stop and any(s in text for s in stop):
                    finish = "stop"
                    break
            text, reason, matched = _cut(text, stop, include_stop) if finish == "stop" else (text, finish, None)
            results[i] = {"text": text, "finish_reason": reason, "stop_reason": matched,
                          "tokens": tokens if top_logprobs is not None else None,
                          "prompt_tokens": int(prompt_lens[b]), "completion_tokens": len(ids)}
    return results  # type: ignore[return-value]
