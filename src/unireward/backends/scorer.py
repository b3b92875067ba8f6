"""The scorer backend: a classic reward model (`models.scorers`: CLIPScore, PickScore, HPSv2, ImageReward, the
aesthetic predictor) behind the backend interface, so that `RewardModel` (and through it the server, bench,
construct and best-of-n) runs it as it runs a judge.

    b = ScorerBackend.load("pickscore", device="cpu", batch_size=32)
    b.score(["a red circle", "a red circle"], [img1, img2])     # -> [float | Exception, ...]
    b.p_first(s1, s2)                                             # sigmoid((s1 - s2) / T)

A scorer writes no text and reads no token probabilities: `generate` and `choice_probs` are refused with what to
use instead. `score` runs in batches of `batch_size`; a batch that fails is retried one item at a time, so one bad
image costs only its own score (its entry is the exception).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from ..errors import BackendError
from .base import Backend, ChatInput


class ScorerBackend(Backend):
    name = "scorer"
    supports_probs = False
    is_scorer = True

    def __init__(self, scorer, batch_size: int = 32):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.scorer = scorer
        self.batch_size = batch_size

    @classmethod
    def load(cls, model: str, *, device: str | None = None, dtype: Any = "auto", batch_size: int = 32,
             temperature: float | None = None) -> "ScorerBackend":
        """A registered scorer by short name, hub id or local copy (`models.scorers.load_scorer`); `temperature`
        replaces the registry's T of the pair link."""
        from ..models.scorers import load_scorer

        return cls(load_scorer(model, device=device, dtype=dtype, temperature=temperature), batch_size=batch_size)

    @property
    def spec(self):
        return self.scorer.spec

    @property
    def temperature(self) -> float:
        return self.scorer.temperature

    @property
    def prompted(self) -> bool:
        return self.scorer.prompted

    @property
    def model_id(self) -> str:
        return self.scorer.source

    def p_first(self, s_a: float, s_b: float) -> float:
        """P(A > B) = sigmoid((s_A - s_B) / T): the Bradley-Terry link of two scores at the scorer's temperature."""
        z = (s_a - s_b) / self.temperature
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def score(self, prompts: Sequence[str], images: Sequence[Any]) -> list[float | Exception]:
        """One score per (prompt, image), batched; an item that fails on its own gets its exception."""
        out: list[float | Exception] = []
        for i in range(0, len(images), self.batch_size):
            ps, ims = list(prompts[i: i + self.batch_size]), list(images[i: i + self.batch_size])
            try:
                out.extend(self.scorer.score(ps, ims))
            except Exception:  # find the item(s) at fault; the others are scored
                for p, im in zip(ps, ims):
                    try:
                        out.extend(self.scorer.score([p], [im]))
                    except Exception as e:
                        out.append(e)
        return out

    def generate(self, inputs: Sequence[ChatInput], max_new_tokens: int = 256,
                 stop: Sequence[str] | None = None, prefix: str = "") -> list[str]:
        raise BackendError(f"{self.spec.name} is a scorer: it gives a number for (caption, image) and writes no "
                           "text; use score, rank, group_reward (or /v1/score, /v1/rank, /v1/reward), not chat")

    def choice_probs(self, inputs: Sequence[ChatInput], prefix, choices: Sequence[str]):
        raise BackendError(f"{self.spec.name} is a scorer and reads no token probabilities; rank with "
                           "RewardModel.rank (P(A > B) comes from its scores)")

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_id, "batch_size": self.batch_size, **self.scorer.describe()}
