"""Judge training inputs, encoded exactly as the judge encodes them at inference.

The judge (`RewardModel` over `backends/hf.py`) renders a request through its task template into a `ChatInput`
(text parts, PIL images, `Video`s), turns it into one user message with `hf._messages`, applies the chat template
with the generation prompt, and calls the processor with videos given as (T, H, W, 3) arrays, frames already
sampled (`do_sample_frames=False` plus explicit metadata). Training must see the same tokens and pixels, so:

- `sample_chat(sample, root, ...)` renders a unified `Sample` into the `ChatInput` the judge would build for it
  (candidates in the sample's order, the way `RewardModel._render` does unswapped);
- `prompt_messages(chat)` is `hf._messages` (the very same function);
- `encode_prompts(processor, prompts, images, videos)` is the processor call of `HFBackend._encode`;
- `JudgeCollator` left-pads the encoded prompts, appends each row's completion tokens (the assistant turn as the
  chat template writes it after the generation prompt: target text plus end-of-turn), right-pads, and sets
  labels to -100 everywhere but on completion tokens.

`tests/test_sft.py` checks the prompt encoding against `HFBackend._encode` token for token and pixel for pixel.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..backends.base import ChatInput
from ..backends.hf import _messages as prompt_messages  # the judge's own message builder
from ..backends.hf import encode_prompts  # the judge's own processor call
from ..errors import DataError, MediaError, PromptTooLongError

IGNORE_INDEX = -100

__all__ = ["IGNORE_INDEX", "JudgeCollator", "completion_text", "encode_prompts", "prompt_messages",
           "prompt_text", "sample_chat"]


def sample_chat(sample, root: str | Path, image_policy=None, video_policy=None, family: str = "unireward",
                variant: str | None = None) -> ChatInput:
    """The user turn the judge builds for `sample` (media loaded under the given policies), with the prompt of
    `family` / `variant` (a released family's template: a judge trained on or run with it)."""
    from ..media import ImagePolicy, VideoPolicy, load_media
    from ..tasks import get_task

    task = get_task(sample.task, family=family, variant=variant)
    video_policy = video_policy or VideoPolicy()
    if task.video_frames and (video_policy.num_frames != task.video_frames or video_policy.fps is not None):
        # as RewardModel._load: the family's script sends exactly this many frames per video
        video_policy = dataclasses.replace(video_policy, num_frames=task.video_frames, fps=None,
                                           max_frames=max(video_policy.max_frames, task.video_frames))
    try:
        media = [load_media(m, task.modality, image_policy=image_policy or ImagePolicy(),
                            video_policy=video_policy) for m in sample.media_paths(root)]
    except MediaError as e:
        raise DataError(f"sample {sample.id!r}: {e}") from None
    if task.domain in ("gen", "edit"):  # edit: media 0 is the source image, 1..k the edited candidates
        parts = task.render(sample.prompt, num_media=len(media))
    else:
        if len(media) != 1:
            raise DataError(f"sample {sample.id!r}: task {task.name} takes one {task.modality}, got {len(media)}")
        parts = task.render(sample.prompt, answers=sample.answers)
    out: list[Any] = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        elif task.video_frames and hasattr(media[p], "frames"):  # as RewardModel._render: a video as its frames
            out.extend(media[p].frames)
        else:
            out.append(media[p])
    return ChatInput(out)


def prompt_text(processor: Any, messages: list[dict]) -> str:
    """The prompt string: the chat template over the user turn, with the generation prompt (as the judge)."""
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def completion_text(processor: Any, messages: list[dict], target: str) -> str:
    """What the chat template writes after the generation prompt for an assistant turn holding `target`
    (the target and the end-of-turn marker): the text the judge is trained to continue with."""
    prompt = prompt_text(processor, messages)
    full = processor.apply_chat_template(messages + [{"role": "assistant", "content": target}], tokenize=False)
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

    def __init__(self, processor: Any, max_length: int | None = None):
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.max_length = max_length
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.tokenizer.eos_token_id or 0)

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        texts, completions = [], []
        for ex in examples:
            texts.append(prompt_text(self.processor, ex["prompt"]))
            completions.append(_completion_of(self.processor, ex))
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


def _completion_of(processor: Any, ex: dict) -> str:
    completion = ex["completion"]
    if isinstance(completion, str):
        target = completion
    else:
        (message,) = completion
        content = message["content"]
        target = content if isinstance(content, str) else "".join(
            p["text"] for p in content if p.get("type") == "text")
    return completion_text(processor, ex["prompt"], target)
