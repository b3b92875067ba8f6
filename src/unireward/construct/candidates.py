"""Candidate samplers: N outputs per prompt from the model being aligned, each with its own recorded seed.

- `VLMSampler`: a transformers image-text-to-text model answering a question about an image or a video,
  sampled at temperature 0.7 (the paper's), one `generate` per candidate under `torch.manual_seed(seed)`, so
  every answer is reproducible from its seed alone.
- `DiffusersImageSampler`: a diffusers text-to-image pipeline (e.g. SDXL-Turbo, 1 step), one
  `torch.Generator(seed)` per image.
- `DiffusersVideoSampler`: a diffusers text-to-video pipeline (e.g. T2V-Turbo, 4 steps), one generator per video.
- any other sampler by name (`unireward.plugins` kind `samplers`, e.g. the sandbox's `sandbox-generator`).

A sampler has `kind` ("text", "image" or "video"), `sample(prompts, seeds) -> [[candidate, ...] per prompt]`
(text: str; image: PIL image; video: list of PIL frames) and `describe()` (what the records cite as the
policy). `candidate_seed(base, prompt_id, k)` derives seeds from the prompt id, not the position in the run, so
a resumed or re-ordered run samples the same candidates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence


@dataclass
class PromptItem:
    """One prompt to construct a pair for: an id, the caption or question, and (understanding) the image or
    video the question is about (a path, or an in-memory image / frames)."""

    id: str
    prompt: str
    media: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


def candidate_seed(base_seed: int, prompt_id: str, k: int) -> int:
    digest = hashlib.sha256(f"{base_seed}\x00{prompt_id}\x00{k}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class VLMSampler:
    """Answers of a VLM to questions about images or videos (`modality`), sampled with per-candidate seeds."""

    kind = "text"

    def __init__(self, model: Any, processor: Any, *, modality: str = "image", temperature: float = 0.7,
                 top_p: float = 1.0, max_new_tokens: int = 128, image_policy=None, video_policy=None,
                 name: str = ""):
        from ..media import ImagePolicy, VideoPolicy

        if modality not in ("image", "video"):
            raise ValueError(f"modality must be image or video, got {modality!r}")
        self.model, self.processor = model.eval(), processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.tokenizer.padding_side = "left"
        self.modality, self.temperature, self.top_p = modality, temperature, top_p
        self.max_new_tokens = max_new_tokens
        self.image_policy, self.video_policy = image_policy or ImagePolicy(), video_policy or VideoPolicy()
        self.name = name or getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__

    @classmethod
    def from_pretrained(cls, path: str, *, dtype: str = "float32", device: str | None = None,
                        **kwargs) -> "VLMSampler":
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        model = AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, dtype))
        if device:
            model.to(device)
        return cls(model, AutoProcessor.from_pretrained(path), name=str(path), **kwargs)

    def describe(self) -> dict[str, Any]:
        return {"sampler": "vlm", "model": self.name, "modality": self.modality, "temperature": self.temperature,
                "top_p": self.top_p, "max_new_tokens": self.max_new_tokens}

    def chat(self, item: PromptItem):
        """The user turn the policy sees: the image or video, then the question (as the DPO recipe trains it)."""
        from ..backends.base import ChatInput
        from ..media import load_media

        media = load_media(item.media, self.modality, self.image_policy, self.video_policy)
        return ChatInput([media, item.prompt])

    def encode(self, chats: Sequence[Any]) -> dict:
        from ..backends.hf import chat_text, encode_prompts

        texts = [chat_text(self.processor, c.messages()) for c in chats]
        return encode_prompts(self.processor, texts, [im for c in chats for im in c.images],
                              [v for c in chats for v in c.videos])

    def sample(self, prompts: Sequence[PromptItem], seeds: Sequence[Sequence[int]]) -> list[list[str]]:
        import torch

        device = next(self.model.parameters()).device
        out = []
        for item, item_seeds in zip(prompts, seeds):
            enc = {k: v.to(device) for k, v in self.encode([self.chat(item)]).items()}
            start = enc["input_ids"].shape[1]
            answers = []
            for s in item_seeds:
                torch.manual_seed(int(s))
                with torch.inference_mode():
                    ids = self.model.generate(**enc, do_sample=True, temperature=self.temperature,
                                              top_p=self.top_p, top_k=0, max_new_tokens=self.max_new_tokens,
                                              pad_token_id=self.tokenizer.pad_token_id)
                answers.append(self.tokenizer.decode(ids[0, start:], skip_special_tokens=True).strip())
            out.append(answers)
        return out


class DiffusersImageSampler:
    """A diffusers text-to-image pipeline; `call_kwargs` go to the pipeline call (e.g. height, width)."""

    kind = "image"

    def __init__(self, pipeline: Any, *, num_inference_steps: int = 1, guidance_scale: float = 0.0,
                 batch_size: int = 8, name: str = "", **call_kwargs):
        self.pipe, self.steps, self.guidance = pipeline, num_inference_steps, guidance_scale
        self.batch_size, self.call_kwargs = batch_size, call_kwargs
        self.name = name or getattr(pipeline, "name_or_path", "") or type(pipeline).__name__

    @classmethod
    def from_pretrained(cls, name: str, *, device: str | None = None, dtype: str = "float32", **kwargs):
        import torch
        from diffusers import DiffusionPipeline

        pipe = DiffusionPipeline.from_pretrained(name, torch_dtype=getattr(torch, dtype))
        if device:
            pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe, name=name, **kwargs)

    def describe(self) -> dict[str, Any]:
        return {"sampler": "diffusers-image", "model": self.name, "pipeline": type(self.pipe).__name__,
                "num_inference_steps": self.steps, "guidance_scale": self.guidance, **self.call_kwargs}

    def sample(self, prompts: Sequence[PromptItem], seeds: Sequence[Sequence[int]]) -> list[list[Any]]:
        import torch

        flat = [(i, p.prompt, int(s)) for i, (p, ss) in enumerate(zip(prompts, seeds)) for s in ss]
        images: list[Any] = []
        for k in range(0, len(flat), self.batch_size):
            chunk = flat[k:k + self.batch_size]
            gens = [torch.Generator(device="cpu").manual_seed(s) for _, _, s in chunk]
            out = self.pipe(prompt=[c for _, c, _ in chunk], generator=gens, num_inference_steps=self.steps,
                            guidance_scale=self.guidance, output_type="pil", **self.call_kwargs)
            images.extend(out.images)
        return _regroup(flat, images, len(prompts))


class DiffusersVideoSampler:
    """A diffusers text-to-video pipeline, one video per call (video pipelines rarely batch generators)."""

    kind = "video"

    def __init__(self, pipeline: Any, *, num_inference_steps: int = 4, guidance_scale: float = 7.5,
                 num_frames: int = 16, name: str = "", **call_kwargs):
        self.pipe, self.steps, self.guidance = pipeline, num_inference_steps, guidance_scale
        self.num_frames = num_frames
        self.call_kwargs = call_kwargs
        self.name = name or getattr(pipeline, "name_or_path", "") or type(pipeline).__name__

    @classmethod
    def from_pretrained(cls, name: str, *, device: str | None = None, dtype: str = "float32", **kwargs):
        return cls(DiffusersImageSampler.from_pretrained(name, device=device, dtype=dtype).pipe, name=name, **kwargs)

    def describe(self) -> dict[str, Any]:
        return {"sampler": "diffusers-video", "model": self.name, "pipeline": type(self.pipe).__name__,
                "num_inference_steps": self.steps, "guidance_scale": self.guidance, "num_frames": self.num_frames,
                **self.call_kwargs}

    def sample(self, prompts: Sequence[PromptItem], seeds: Sequence[Sequence[int]]) -> list[list[Any]]:
        import torch

        out = []
        for p, ss in zip(prompts, seeds):
            videos = []
            for s in ss:
                res = self.pipe(prompt=p.prompt, generator=torch.Generator(device="cpu").manual_seed(int(s)),
                                num_inference_steps=self.steps, guidance_scale=self.guidance,
                                num_frames=self.num_frames, output_type="np", **self.call_kwargs)
                videos.append(to_frames(res.frames[0]))
            out.append(videos)
        return out


def to_frames(video: Any) -> list[Any]:
    """A video as a list of RGB PIL frames (from a (T, H, W, 3) float [0, 1] or uint8 array, or PIL frames)."""
    import numpy as np
    from PIL import Image

    if isinstance(video, (list, tuple)) and video and isinstance(video[0], Image.Image):
        return [f.convert("RGB") for f in video]
    arr = np.asarray(video)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    return [Image.fromarray(f) for f in arr]


def _regroup(flat: list[tuple[int, str, int]], outputs: list[Any], n: int) -> list[list[Any]]:
    groups: list[list[Any]] = [[] for _ in range(n)]
    for (i, _, _), o in zip(flat, outputs):
        groups[i].append(o)
    return groups


def read_prompts(path: str | Path) -> list[PromptItem]:
    """A prompts JSONL: one {"id", "prompt", "media"?} per line; relative media paths resolve against the file's
    folder. Ids must be unique (they key the resumable output)."""
    from ..data.schema import read_jsonl
    from ..errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such prompts file; write one {{\"id\", \"prompt\", \"media\"}} per line")

    items, seen = [], set()
    for i, d in read_jsonl(path):
        if "id" not in d or "prompt" not in d:
            raise DataError(f"{path}:{i}: a prompt needs 'id' and 'prompt'")
        pid = str(d["id"])
        if pid in seen:
            raise DataError(f"{path}:{i}: duplicate prompt id {pid!r}")
        seen.add(pid)
        media = d.get("media")
        if isinstance(media, str) and not Path(media).is_absolute():
            media = str(path.parent / media)
        elif isinstance(media, list):
            media = [m if Path(m).is_absolute() else str(path.parent / m) for m in media]
        items.append(PromptItem(pid, d["prompt"], media, d.get("meta", {})))
    return items


__all__ = ["DiffusersImageSampler", "DiffusersVideoSampler", "PromptItem", "VLMSampler", "candidate_seed",
           "read_prompts", "to_frames"]
