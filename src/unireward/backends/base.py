"""The backend interface: two request types over rendered chat inputs.

A `ChatInput` is the user turn as a list of parts (text, PIL images, `Video`s). Backends:
- `generate(inputs, max_new_tokens, stop)` -> one completion per input (greedy);
- `choice_probs(inputs, prefix, choices)` -> for each input, the probability of each choice string as the
  continuation of the assistant turn after `prefix`, normalised over the choices; or None when the backend
  cannot read token probabilities (the judge then generates and parses).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence


@dataclass
class ChatInput:
    parts: list[Any]  # str | PIL.Image.Image | unireward.media.Video

    @property
    def images(self) -> list[Any]:
        from PIL import Image

        return [p for p in self.parts if isinstance(p, Image.Image)]

    @property
    def videos(self) -> list[Any]:
        from ..media import Video

        return [p for p in self.parts if isinstance(p, Video)]


class Backend(ABC):
    name: str = "backend"
    supports_probs: bool = True

    @abstractmethod
    def generate(self, inputs: Sequence[ChatInput], max_new_tokens: int = 256,
                 stop: Sequence[str] | None = None, prefix: str = "") -> list[str]:
        """Greedy completions (after `prefix`, which is forced as the start of the answer when given)."""

    @abstractmethod
    def choice_probs(self, inputs: Sequence[ChatInput], prefix: str,
                     choices: Sequence[str]) -> list[list[float]] | None:
        """P(choice | input, prefix) for each choice, normalised over the choices."""

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}
