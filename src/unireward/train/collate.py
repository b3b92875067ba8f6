"""Judge training inputs, encoded exactly as the judge encodes them at inference.

A training run resolves its judge spec once (`training_spec`: the model's registry entry and unireward.json,
then the run's family, variant, chat template options and media policies; `judging.spec.resolve_spec`) and
renders every sample through the judge's own renderer:

- `sample_chat(sample, root, spec)` prepares and renders a unified `Sample` exactly as `RewardModel` renders a
  request (`judging.render.prepare` + `render`, candidates in the sample's order, unswapped);
- `prompt_messages(chat)` is `ChatInput.messages()`, the one message builder of judging and training;
- `prompt_text(processor, messages, chat_template_kwargs)` is `backends.hf.chat_text`, the judge's prompt string
  (the spec's chat template options included: a Qwen3.5 judge is trained on the prompt it is run with);
- `encode_prompts(processor, prompts, images, videos)` is the processor call of `HFBackend.encode`;
- `JudgeCollator` left-pads the encoded prompts, appends each row's completion tokens (the assistant turn as the
  chat template writes it after the generation prompt: target text plus end-of-turn), right-pads, and sets
  labels to -100 everywhere but on completion tokens.

`tests/test_sft.py` checks the prompt encoding against the judge's token for token and pixel for pixel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..backends.base import ChatInput
from ..backends.hf import chat_text, encode_prompts  # the judge's own prompt string and processor call
from ..errors import DataError, MediaError, PromptTooLongError, TaskError
from ..judging.render import load, prepare, render, sample_request
from ..judging.spec import JudgeSpec, resolve_spec

IGNORE_INDEX = -100

__all__ = ["IGNORE_INDEX", "JudgeCollator", "completion_text", "encode_prompts", "prompt_messages",
           "prompt_text", "sample_chat", "training_spec"]


def training_spec(model: str, family: str | None = None, variant: str | None = None,
                  chat_template_kwargs: dict | None = None, image_policy=None, video_policy=None) -> JudgeSpec:
    """The spec a judge trained from `model` is rendered with: the model's own (registry entry, unireward.json),
    then the run's settings (None: the model's)."""
    return resolve_spec(model, family=family, variant=variant, chat_template_kwargs=chat_template_kwargs or None,
                        image_policy=image_policy, video_policy=video_policy)


def sample_chat(sample, root: str | Path, spec: JudgeSpec) -> ChatInput:
    """The user turn the judge of `spec` builds for `sample` (media loaded under the spec's policies, the prompt
    of its family / variant)."""
    try:
        task = spec.task(sample.task)
        media = [load(spec, task, m) for m in sample.media_paths(root)]
        context, candidates = sample_request(task, media, sample.answers)
        prepared = prepare(spec, task, sample.prompt, candidates, context, loader=lambda _s, _t, x: x)
        if prepared.error is not None:
            raise TaskError(prepared.error)
        return render(task, prepared)
    except (MediaError, TaskError) as e:
        raise DataError(f"sample {sample.id!r}: {e}") from None


def prompt_messages(chat: ChatInput) -> list[dict]:
    """The judge's user message for a rendered chat input (`ChatInput.messages`)."""
    return chat.messages()


def prompt_text(processor: Any, messages: list[dict], chat_template_kwargs: dict | None = None) -> str:
    """The prompt string: the chat template over the user turn, with the generation prompt (as the judge)."""
    return chat_text(processor, messages, chat_template_kwargs)


def completion_text(processor: Any, messages: list[dict], target: str, chat_template_kwargs: dict | None = None) -> str:
    """What the chat template writes after the generation prompt for an assistant turn holding `target`
    (the target and the end-of-turn marker): the text the judge is trained to continue with."""
    prompt = prompt_text(processor, messages, chat_template_kwargs)
    full = chat_text(processor, messages + [{"role": "assistant", "content": target}], chat_template_kwargs,
                     add_generation_prompt=False)
    if not full.startswith(prompt):
        raise DataError("the chat template renders the user turn differently with and without an answer; the "
                        "generation prompt is not a prefix of the answered conversation, so the judge's prompt "
                        "cannot be reproduced in training")
    return full[len(prompt):]


class JudgeCollator:
    """Batches examples {prompt: [user message], completion: [assistant message], images: [PIL],
    videos: [Video], id} into model inputs with completion-only labels (right-padded).

    Images and videos may mix within a batch and within an example; an example's media are taken in the
    order of its message parts, images and videos each in their own list, as the judge passes them.
    """

    def __init__(self, processor: Any, max_length: int | None = None, chat_template_kwargs: dict | None = None):
        self.processor = processor
        self.chat_template_kwargs = dict(chat_template_kwargs or {})  # the judge spec's (Qwen3.5: enable_thinking)
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.max_length = max_length
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.tokenizer.eos_token_id or 0)

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        texts, completions = [], []
        for ex in examples:
            texts.append(prompt_text(self.processor, ex["prompt"], self.chat_template_kwargs))
            completions.append(_completion_of(self.processor, ex, self.chat_template_kwargs))
        images = [im for ex in examples for im in (ex.get("images") or [])]
        videos = [v for ex in examples for v in (ex.get("videos") or [])]
        enc = encode_prompts(self.processor, texts, images, videos)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        comp_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in completions]
        lengths = [int(m.sum()) + len(c) for m, c in zip(mask, comp_ids)]
        if self.max_length is not None:
            for ex, n in zip(examples, lengths):
                if n > self.max_length:
                    raise PromptTooLongError(
                        f"sample {ex.get('id', '?')!r} is {n} tokens, over max_length={self.max_length}; raise "
                        "max_length, or lower video_frames / the pixel budgets (truncating would cut the answer "
                        "or image tokens)")
        width = max(lengths)
        per_token = [k for k, v in enc.items() if hasattr(v, "shape") and tuple(v.shape) == tuple(ids.shape)]
        out = {k: v for k, v in enc.items() if k not in per_token}
        for key in per_token:
            old = enc[key]
            fill = self.pad_id if key == "input_ids" else 0
            new = torch.full((len(examples), width), fill, dtype=old.dtype)
            for b, comp in enumerate(comp_ids):
                kept = old[b][mask[b].bool()]
                if key == "input_ids":
                    tail = torch.tensor(comp, dtype=old.dtype)
                elif key == "attention_mask":
                    tail = torch.ones(len(comp), dtype=old.dtype)
                else:  # multimodal token types: completions are text
                    tail = torch.zeros(len(comp), dtype=old.dtype)
                row = torch.cat([kept, tail])
                new[b, : len(row)] = row
            out[key] = new
        labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
        for b, comp in enumerate(comp_ids):
            start = int(mask[b].sum())
            labels[b, start: start + len(comp)] = torch.tensor(comp, dtype=torch.long)
        out["labels"] = labels
        return out


def _completion_of(processor: Any, ex: dict, chat_template_kwargs: dict) -> str:
    completion = ex["completion"]
    if isinstance(completion, str):
        target = completion
    else:
        (message,) = completion
        content = message["content"]
        target = content if isinstance(content, str) else "".join(
            p["text"] for p in content if p.get("type") == "text")
    return completion_text(processor, ex["prompt"], target, chat_template_kwargs)
