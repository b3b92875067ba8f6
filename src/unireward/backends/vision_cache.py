"""Judging a call's prompts at the cost of their distinct images and videos, not of their prompts.

In a group of G candidates judged in both orders every image appears in 2(G-1) of the G(G-1) pair prompts; the
plain path (`encode_prompts`, then the model's forward) runs the processor and the vision tower on it each time.
`SharedMedia` prepares the prompts of one backend call instead, so that
- each distinct medium (the same object, or the same pixels: `media.content_hash`) goes through the processor once and
  through the vision tower once, when the first batch that needs it runs; its features are dropped after the last
  batch that uses it, so memory follows the batches, not the call;
- a prompt's token ids are assembled from its rendered chat text split at the media placeholders: each text piece
  and each medium's placeholder expansion is tokenised once per call (the tokenizer splits at special tokens, so
  the pieces tokenise exactly as the whole string does), and the chat template is rendered once per prompt shape
  when it copies text parts verbatim (checked on the first prompt of each shape; otherwise once per prompt);
- the forward pass gets `mm_encoder_outputs` (transformers' entry point for precomputed visual features: pooled
  features and, for Qwen3-VL, the deepstack features it injects into early decoder layers) with `input_ids`,
  `mm_token_type_ids` and the grids; the multimodal rotary positions of a right-padded batch are assembled
  from one block per medium shape computed by the model's own `get_rope_index` (no per-token Python loop);
- prompts that open with the same prefix (instruction and first medium) run it once per call (`shared_prefix.py`).

It applies to models whose `get_image_features` returns per-medium `pooler_output` and whose processor has
`replace_image_token` (the Qwen2-VL, Qwen2.5-VL and Qwen3-VL families in transformers 5); `SharedMedia.supports`
says whether a backend qualifies, and the backend keeps the plain path otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import BackendError

_SENTINEL = "\x00unireward-text-{}\x00"  # stands for text part k when a chat template is rendered once per shape


@dataclass
class _Medium:
    kind: str  # "image" | "video"
    source: Any  # the PIL image or Video
    uses: int = 0  # rows of the call still to run that contain it
    ids: list[int] = field(default_factory=list)  # its placeholder expansion, as token ids
    grid: Any = None  # (3,) grid_thw
    extra: dict = field(default_factory=dict)  # other per-medium model inputs (Qwen2.5-VL: second_per_grid_ts)
    pixels: Any = None  # processed pixel rows, until encoded
    features: Any = None  # pooled visual features, once encoded
    deepstack: list | None = None  # Qwen3-VL: per injected layer, this medium's features


class SharedMedia:
    """One backend call's prompts, prepared with each distinct medium processed and encoded once."""

    def __init__(self, backend: Any, inputs: Sequence[Any], repeat: int | Sequence[int] = 1):
        """`inputs`: the call's ChatInputs; each is encoded `repeat` times (once per choice path; one count for
        all or one per input)."""
        repeat = [repeat] * len(inputs) if isinstance(repeat, int) else list(repeat)
        self.backend = backend
        self.processor = backend.processor
        self.tokenizer = backend.tokenizer
        self.media: dict[str, _Medium] = {}
        self._keys: dict[int, str] = {}  # id(object) -> media key, for objects alive during the call
        self._text_ids: dict[str, list[int]] = {}
        self._shapes: dict[tuple, list | None] = {}  # prompt shape -> literal pieces of its rendering, or None
        self._output_cls: dict[str, type] = {}
        self._blocks: dict[tuple, tuple] = {}
        inner = getattr(backend.model, "model", backend.model)
        self._rope_index = getattr(inner, "get_rope_index", None)
        tokens = [t for t in (getattr(self.processor, "image_token", None),
                              getattr(self.processor, "video_token", None)) if t]
        self._split = re.compile("(" + "|".join(re.escape(t) for t in tokens) + ")")
        self.rows = [self._row(x) for x in inputs]
        from .shared_prefix import PrefixCache

        self.prefixes = PrefixCache(self, repeat)
        for (_, media), times in zip(self.rows, repeat):
            for m in media:
                m.uses += times

    @staticmethod
    def supports(backend: Any) -> bool:
        model, proc = backend.model, backend.processor
        tok = backend.tokenizer
        if not (hasattr(model, "get_image_features") and hasattr(proc, "replace_image_token")
                and getattr(proc, "image_token", None) and hasattr(model.config, "image_token_id")):
            return False
        import inspect

        if "mm_encoder_outputs" not in inspect.signature(model.forward).parameters:
            return False
        # the pieces are tokenised without special tokens: the tokenizer must not add any of its own
        return tok("x", add_special_tokens=True)["input_ids"] == tok("x", add_special_tokens=False)["input_ids"]

    # -- building rows -----------------------------------------------------------------------------------------
    def media_key(self, x: Any) -> str:
        """The content key of an image or video object of this call (hashed once per object)."""
        from ..media import content_hash

        k = self._keys.get(id(x))
        if k is None:
            k = self._keys[id(x)] = content_hash(x)
        return k

    def _medium(self, x: Any) -> _Medium:
        from PIL import Image

        k = self.media_key(x)
        if k not in self.media:
            self.media[k] = _Medium("image" if isinstance(x, Image.Image) else "video", x)
        return self.media[k]

    def _render(self, x: Any) -> str:
        """The prompt's chat text, rendered once per shape (the sequence of part kinds) where the template copies
        text parts verbatim, as checked against a full rendering of the first prompt of each shape."""
        from .base import ChatInput

        texts = [p for p in x.parts if isinstance(p, str)]
        shape = tuple("t" if isinstance(p, str) else type(p).__name__ for p in x.parts)
        if shape not in self._shapes:
            full = self.backend.prompt_text(x)
            k = iter(range(len(texts)))
            probe = self.backend.prompt_text(ChatInput([_SENTINEL.format(next(k)) if isinstance(p, str) else p
                                                         for p in x.parts]))
            pieces = re.split("\x00unireward-text-(\\d+)\x00", probe)
            ok = len(pieces) == 2 * len(texts) + 1 and _fill(pieces, texts) == full
            self._shapes[shape] = pieces if ok else None
            return full
        pieces = self._shapes[shape]
        return _fill(pieces, texts) if pieces is not None else self.backend.prompt_text(x)

    def _row(self, x: Any) -> tuple[list, list[_Medium]]:
        """(pieces, media) of one prompt: pieces are text strings and `_Medium`s in order."""
        media = [self._medium(p) for p in x.parts if not isinstance(p, str)]
        pieces: list = []
        queue = iter(media)
        placeholders = {self.processor.image_token: "image", getattr(self.processor, "video_token", None): "video"}
        for s in self._split.split(self._render(x)):
            if s in placeholders:
                m = next(queue, None)
                if m is None or m.kind != placeholders[s]:
                    raise BackendError("the chat template's media placeholders do not match the prompt's media")
                pieces.append(m)
            elif s:
                pieces.append(s)
        if next(queue, None) is not None:
            raise BackendError("the chat template left out some of the prompt's media")
        return pieces, media

    # -- media: processor and vision tower, once each --------------------------------------------------------
    def _prepare_media(self, media: list[_Medium]) -> None:
        """Pixels, grid and placeholder ids of each medium not yet prepared: images through the image processor
        in one call (on the model's GPU when it has one) with the processor's own placeholder expansion; videos
        through the full processor call, which also writes Qwen3-VL's frame timestamps."""
        from .hf import encode_prompts

        images = [m for m in media if m.kind == "image" and m.grid is None]
        if images:
            # same-sized images resized and normalised as one stack (on CPU the processor's default is one at a
            # time, 1.7x slower for 64 px images; the pixels are identical)
            kwargs = {"device": self.backend.device} if self.backend.device.type == "cuda" else {}
            srcs = [m.source for m in images]
            try:
                enc = self.processor.image_processor(images=srcs, return_tensors="pt", disable_grouping=False,
                                                     **kwargs)
            except (TypeError, ValueError):  # an image processor without torch ops: its own defaults
                enc = self.processor.image_processor(images=srcs, return_tensors="pt")
            pixels = enc["pixel_values"].split(enc["image_grid_thw"].prod(-1).tolist())
            for b, m in enumerate(images):
                m.ids = self.text_ids(self.processor.replace_image_token(enc, b))
                m.grid, m.pixels = enc["image_grid_thw"][b].cpu(), pixels[b]
        videos = [m for m in media if m.kind == "video" and m.grid is None]
        if videos:
            enc = encode_prompts(self.processor, [self.processor.video_token] * len(videos), [],
                                 [m.source for m in videos], padding_side="right")
            pixels = enc["pixel_values_videos"].split(enc["video_grid_thw"].prod(-1).tolist())
            for b, m in enumerate(videos):
                m.ids = enc["input_ids"][b][enc["attention_mask"][b].bool()].tolist()
                m.grid, m.pixels = enc["video_grid_thw"][b], pixels[b]
                if "second_per_grid_ts" in enc:
                    m.extra["second_per_grid_ts"] = enc["second_per_grid_ts"][b]

    def text_ids(self, text: str) -> list[int]:
        """Token ids of a text piece of the prompts (no special tokens), tokenised once per call."""
        ids = self._text_ids.get(text)
        if ids is None:
            ids = self._text_ids[text] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids

    def _encode_media(self, media: list[_Medium]) -> None:
        import torch

        model = self.backend.model
        for kind in ("image", "video"):
            todo = [m for m in media if m.kind == kind and m.features is None]
            if not todo:
                continue
            device = self.backend.device
            pixels = torch.cat([m.pixels for m in todo]).to(device)
            grids = torch.stack([m.grid for m in todo]).to(device)
            with torch.inference_mode():
                fn = model.get_image_features if kind == "image" else model.get_video_features
                out = fn(pixels, grids, return_dict=True)
            self._output_cls[kind] = type(out)
            deep = getattr(out, "deepstack_features", None)
            for b, m in enumerate(todo):
                m.features, m.pixels = out.pooler_output[b], None
                m.deepstack = [layer[b] for layer in deep] if deep else None

    def _outputs(self, kind: str, media: list[_Medium]):
        """The model's precomputed-encoder input for `media` in order of appearance in the batch."""
        kwargs: dict[str, Any] = {"pooler_output": tuple(m.features for m in media)}
        if media[0].deepstack is not None:
            kwargs["deepstack_features"] = [tuple(m.deepstack[layer] for m in media)
                                            for layer in range(len(media[0].deepstack))]
        return self._output_cls[kind](**kwargs)

    # -- a batch -------------------------------------------------------------------------------------------------
    def encode(self, rows: Sequence[int], padding_side: str = "right") -> dict:
        """Model inputs for the prompts `rows` (indices into the call's inputs), padded on `padding_side`:
        input_ids, attention_mask, mm_token_type_ids, grids and `mm_encoder_outputs`."""
        import torch

        batch = [self.rows[r] for r in rows]
        used = [m for _, media in batch for m in media]  # in order of appearance, repeats included
        distinct = list({id(m): m for m in used}.values())
        self._prepare_media(distinct)
        self._encode_media(distinct)
        new = [s for pieces, _ in batch for s in pieces if isinstance(s, str) and s not in self._text_ids]
        new = list(dict.fromkeys(new))
        if new:
            self._text_ids.update(zip(new, self.tokenizer(new, add_special_tokens=False)["input_ids"]))
        image_id, video_id = self.backend.model.config.image_token_id, getattr(
            self.backend.model.config, "video_token_id", None)
        seqs = []
        for pieces, _ in batch:
            seq: list[int] = []
            for s in pieces:
                seq.extend(self._text_ids[s] if isinstance(s, str) else s.ids)
            seqs.append(seq)
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for b, s in enumerate(seqs):
            cols = slice(0, len(s)) if padding_side == "right" else slice(width - len(s), width)
            ids[b, cols] = torch.tensor(s, dtype=torch.long)
            mask[b, cols] = 1
        types = (ids == image_id).long() + 2 * (ids == video_id).long() if video_id is not None else (
            ids == image_id).long()
        enc: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": types * mask}
        outputs = {}
        for kind in ("image", "video"):
            occ = [m for m in used if m.kind == kind]
            if occ:
                enc[f"{kind}_grid_thw"] = torch.stack([m.grid for m in occ])
                outputs[kind] = self._outputs(kind, occ)
                if kind == "video" and "second_per_grid_ts" in occ[0].extra:
                    enc["second_per_grid_ts"] = torch.stack([m.extra["second_per_grid_ts"] for m in occ])
        if outputs:
            enc["mm_encoder_outputs"] = outputs
        if padding_side == "right" and self._rope_index is not None:
            enc["position_ids"] = _Positions([self._row_positions(pieces) for pieces, _ in batch])
            enc["_prefix"] = [self.prefixes.info(pieces) for pieces, _ in batch]
        self._release(used)
        return enc

    # -- shared prefixes (shared_prefix.py) -------------------------------------------------------------------
    def prefix_key(self, row: int) -> tuple:
        return self.prefixes.key(row)

    def forward(self, enc: dict, logits_to_keep):
        """The model's forward on a batch from `encode` (on device), prefixes shared where they can be."""
        return self.prefixes.forward(enc, logits_to_keep)

    def outputs_for(self, media: list[_Medium]) -> dict | None:
        """`mm_encoder_outputs` for `media` in order of appearance (None when there are none)."""
        out = {kind: self._outputs(kind, [m for m in media if m.kind == kind]) for kind in ("image", "video")
               if any(m.kind == kind for m in media)}
        return out or None

    # -- multimodal rotary positions, without the model's per-token Python loop ---------------------------------
    def _block(self, m: _Medium):
        """(positions relative to the medium's start, how far it advances the position): the model's own
        `get_rope_index` on the medium's placeholder ids followed by one text token. Every Qwen-VL family
        offsets a medium's positions by the position where it starts, so one block serves every prompt."""
        import torch

        key = (m.kind, tuple(m.grid.tolist()), tuple(m.ids), tuple(float(v) for v in m.extra.values()))
        if key not in self._blocks:
            ids = torch.tensor([m.ids + [self.tokenizer.pad_token_id or 0]])
            types = (ids == self.backend.model.config.image_token_id).long() + 2 * (
                ids == getattr(self.backend.model.config, "video_token_id", -1)).long()
            extra = {k: v.reshape(1) for k, v in m.extra.items()}
            pos, _ = self._rope_index(ids, mm_token_type_ids=types, **{f"{m.kind}_grid_thw": m.grid[None]}, **extra)
            self._blocks[key] = (pos[:, 0, :-1].numpy(), int(pos[0, 0, -1]))
        return self._blocks[key]

    def _row_positions(self, pieces: list):
        import numpy as np

        parts, p = [], 0
        for s in pieces:
            if isinstance(s, str):
                n = len(self._text_ids[s])
                parts.append(np.broadcast_to(np.arange(p, p + n), (3, n)))
                p += n
            else:
                block, advance = self._block(s)
                parts.append(block + p)
                p += advance
        return np.concatenate(parts, axis=1), p

    def _release(self, used: list[_Medium]) -> None:
        """Count the batch's uses; a medium no later batch needs gives its features back."""
        for m in used:
            m.uses -= 1
        for m in used:
            if m.uses <= 0:
                m.features = m.deepstack = None


def _fill(pieces: list[str], texts: list[str]) -> str:
    """A rendering from its literal pieces (even positions) and text-part numbers (odd positions)."""
    return "".join(p if i % 2 == 0 else texts[int(p)] for i, p in enumerate(pieces))


class _Positions:
    """The rotary positions of a right-padded batch, finished once its width is final: tokens appended after a
    row's end (the forced answer) and the padding continue the row's text positions."""

    def __init__(self, rows: list):
        self.rows = rows  # per row: ((3, n) positions of its own tokens, the position after them)

    def build(self, width: int):
        import numpy as np
        import torch

        out = np.empty((3, len(self.rows), width), dtype=np.int64)
        for b, (pos, end) in enumerate(self.rows):
            n = pos.shape[1]
            out[:, b, :n] = pos
            out[:, b, n:] = end + np.arange(width - n)
        return torch.from_numpy(out)


def on_device(enc: dict, device: Any) -> dict:
    """Model inputs on `device`: tensors moved, positions finished at the batch's width, precomputed encoder
    outputs (already there) passed through."""
    width = enc["input_ids"].shape[1]
    return {k: v.build(width).to(device) if isinstance(v, _Positions) else v.to(device) if hasattr(v, "to") else v
            for k, v in enc.items()}


def model_inputs(enc: dict) -> dict:
    """An encoding without the shared path's own notes (keys starting with `_`), as the model takes it."""
    return {k: v for k, v in enc.items() if not k.startswith("_")}
