"""The backend interface: request types over rendered chat inputs.

A `ChatInput` is the user turn as a list of parts (text, PIL images, `Video`s). Backends:
- `generate(inputs, max_new_tokens, stop)` -> one completion per input (greedy);
- `choice_probs(inputs, prefix, choices)` -> for each input, the probability of each choice string as the
  continuation of the assistant turn after `prefix` (one string for all inputs, or one per input), normalised over
  the choices; None for the whole call when the backend cannot read token probabilities (the judge then generates
  and parses), None for a row whose choices could not be read;
- `think_then_read(inputs, stop, choices, max_new_tokens)` -> for judges that reason before their verdict:
  generate greedily until `stop` (the format's `reasoning_stop`), then read `choices` right after it. The
  generic version here is `generate` + `choice_probs` with each input's own text as its prefix; the transformers
  backend overrides it to continue from the generated token ids themselves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..errors import BackendError


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

    def messages(self, media: Callable[[Any], dict] | None = None) -> list[dict]:
        """The user turn as chat messages, parts in order: the one message builder of judging, training, the
        OpenAI requests and the dry run. `media(part)` gives an image's or video's content entry (default:
        `{"type": "image"}` / `{"type": "video"}`, the processor's placeholders)."""
        from PIL import Image

        from ..media import Video

        content: list[dict] = []
        for p in self.parts:
            if isinstance(p, str):
                content.append({"type": "text", "text": p})
            elif isinstance(p, (Image.Image, Video)):
                kind = "video" if isinstance(p, Video) else "image"
                content.append(media(p) if media is not None else {"type": kind})
            else:
                raise BackendError(f"unsupported part of type {type(p).__name__} in a chat input")
        return [{"role": "user", "content": content}]


@dataclass
class ReasonedChoice:
    """One think-then-read answer: the reasoning the judge wrote and the choice distribution read after it."""

    text: str  # the generated text up to and including the stop; all of it when the stop never came
    probs: list[float] | None  # None: not read (see `reason`)
    reason: str | None = None


def unreached(stop: str, max_new_tokens: int) -> str:
    return f"the reasoning did not reach {stop!r} within {max_new_tokens} tokens; no verdict to read"


UNREADABLE = ("none of the choices was among the token probabilities the backend reported (e.g. the server's "
              "top log-probabilities); no verdict to read")


class Backend(ABC):
    name: str = "backend"
    supports_probs: bool = True
    is_scorer: bool = False  # a scorer (backends/scorer.py): numbers for (caption, image), no text

    @abstractmethod
    def generate(self, inputs: Sequence[ChatInput], max_new_tokens: int = 256,
                 stop: Sequence[str] | None = None, prefix: str = "") -> list[str]:
        """Greedy completions (after `prefix`, which is forced as the start of the answer when given)."""

    @abstractmethod
    def choice_probs(self, inputs: Sequence[ChatInput], prefix: str | Sequence[str],
                     choices: Sequence[str]) -> list[list[float] | None] | None:
        """P(choice | input, prefix) for each choice, normalised over the choices."""

    def think_then_read(self, inputs: Sequence[ChatInput], stop: str, choices: Sequence[str],
                        max_new_tokens: int = 256) -> list[ReasonedChoice]:
        """Generate each input's reasoning until `stop`, cut it right after the stop, read `choices` there."""
        texts = self.generate(inputs, max_new_tokens=max_new_tokens, stop=[stop])
        out = [ReasonedChoice(t, None, unreached(stop, max_new_tokens)) for t in texts]
        reached = [i for i, t in enumerate(texts) if stop in t]
        cut = {i: texts[i][: texts[i].index(stop) + len(stop)] for i in reached}
        rows = self.choice_probs([inputs[i] for i in reached], [cut[i] for i in reached], choices) if reached else []
        if rows is None:
            raise BackendError(f"the {self.name} backend cannot read token probabilities")
        for i, row in zip(reached, rows):
            out[i] = ReasonedChoice(cut[i], row, None if row is not None else UNREADABLE)
        return out

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}
