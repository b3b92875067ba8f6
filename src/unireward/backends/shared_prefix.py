"""Prompt prefixes run once per call: the prefix-cache half of the shared path (see `vision_cache.py`).

Pair prompts of a group start with the same tokens when they share their instruction and first medium: with G
candidates in both orders, each prefix (instruction text + first image) opens G - 1 of the G(G-1) prompts. The
shared path runs each distinct prefix once per call, keeps its KV cache (one row) until the last prompt that shares
it has run, and runs every prompt's remainder on a cache gathered from its prefix's rows, with the remainder's
rotary positions and visual features (Qwen3-VL's deepstack features included) passed as the model takes them.
A batch whose prompts start differently (different lengths up to the first medium) or share nothing with any other
prompt of the call runs the plain forward. Measured in `benchmarks/group_throughput.py`.
"""

from __future__ import annotations

from collections import Counter
from copy import copy
from typing import Any


class PrefixCache:
    """Per call: how many prompts each prefix opens, and the KV rows of the prefixes already run."""

    def __init__(self, shared: Any, repeat: list[int]):
        self.shared = shared
        self.kv: dict[tuple, list] = {}  # prefix key -> per layer (keys, values) of its one row
        self.uses = Counter(self.key(i) for i in range(len(shared.rows)) for _ in range(repeat[i]))

    def key(self, row: int) -> tuple:
        """Identity of a prompt's prefix through its first medium: text pieces and the medium's content hash.
        Sorting rows by it puts prompts that share a prefix next to each other."""
        out = []
        for s in self.shared.rows[row][0]:
            out.append(s if isinstance(s, str) else self.shared.media_key(s.source))
            if not isinstance(s, str):
                break
        return tuple(out)

    def info(self, pieces: list) -> tuple:
        """(length in tokens, key, the prefix's media, the remainder's media) of one prompt of a batch; the media
        are shallow copies, which keep their features after the batch releases them."""
        n, key = 0, []
        for k, s in enumerate(pieces):
            n += len(self.shared.text_ids(s)) if isinstance(s, str) else len(s.ids)
            key.append(s if isinstance(s, str) else self.shared.media_key(s.source))
            if not isinstance(s, str):
                return n, tuple(key), [copy(s)], [copy(m) for m in pieces[k + 1:] if not isinstance(m, str)]
        return 0, (), [], []

    def forward(self, enc: dict, logits_to_keep):
        """The model's forward on a batch from `SharedMedia.encode` (on device); see the module docstring."""
        import torch
        from transformers import DynamicCache

        from .vision_cache import model_inputs

        backend = self.shared.backend
        info, model = enc.get("_prefix"), backend.model
        if not backend.share_prefix or not info or len({n for n, *_ in info}) != 1 or info[0][0] == 0 or all(
                self.uses[k] <= 1 and k not in self.kv for _, k, _, _ in info):
            return model(**model_inputs(enc), logits_to_keep=logits_to_keep)
        n, ids, pos = info[0][0], enc["input_ids"], enc["position_ids"]
        new = [k for k in dict.fromkeys(k for _, k, _, _ in info) if k not in self.kv]
        if new:
            reps = [next(b for b, i in enumerate(info) if i[1] == k) for k in new]
            head = model(input_ids=ids[reps, :n], position_ids=pos[:, reps, :n], use_cache=True, logits_to_keep=1,
                         mm_encoder_outputs=self.shared.outputs_for([m for r in reps for m in info[r][2]]))
            for j, k in enumerate(new):
                self.kv[k] = [(layer.keys[j: j + 1], layer.values[j: j + 1]) for layer in head.cache.layers]
        rows = [self.kv[k] for _, k, _, _ in info]
        cache = DynamicCache([(torch.cat([r[layer][0] for r in rows]), torch.cat([r[layer][1] for r in rows]))
                              for layer in range(len(rows[0]))], config=model.config)
        for _, k, _, _ in info:
            self.uses[k] -= 1
            if self.uses[k] <= 0:
                self.kv.pop(k, None)
        return model(input_ids=ids[:, n:], position_ids=pos[:, :, n:], cache=cache, logits_to_keep=logits_to_keep - n,
                     mm_encoder_outputs=self.shared.outputs_for([m for i in info for m in i[3]]))
