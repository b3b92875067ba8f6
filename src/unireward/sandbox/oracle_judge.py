"""A judge backend that answers from the sandbox oracle: exact, instant, and a drop-in for a trained judge.

    from unireward.judge import RewardModel
    from unireward.sandbox.oracle_judge import OracleBackend

    judge = RewardModel(OracleBackend())
    judge.rank("a red circle at the top left", img_a, img_b, task="image-gen/pair")   # winner 1, 2 or "tie"
    judge.score("What colour is the shape?", "It is red.", task="image-und/point", media=img)

`OracleBackend` reads the rendered `ChatInput` the way a VLM would: the caption ("Prompt: ...") or the question
("Question: ...") and the answers ("Answer 1: ...") from the text parts, and the candidates or the context from
the pixels of the images and videos (`oracle.read_media`); it never sees a `Scene`. A candidate's quality is the
fraction of the required facts it gets right (`oracle.score_media` for generated media, the answer's facts
against the pixel reading for answers). Pair verdicts: the higher fraction wins, equal fractions tie. Point
scores: low + (high - low) x fraction, rounded (the sandbox data's own labels). Edits ("Instruction: ..."; media 0
the source, then the edited candidates): an edit's quality is `oracle.edit_score` of the pixel readings of
source and edit. `choice_probs` puts
`confidence` on the exact choice and spreads the rest evenly; `generate` writes the task's own answer text.

It understands the built-in templates of the eight tasks and the two edit tasks (no dimensions); anything else
raises `BackendError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..backends.base import Backend, ChatInput
from ..errors import BackendError
from . import oracle

_PROMPT = re.compile(r"^Prompt: (.*)$", re.M)
_QUESTION = re.compile(r"^Question: (.*)$", re.M)
_ANSWER_N = re.compile(r"^Answer (\d): (.*)$", re.M)
_ANSWER_1 = re.compile(r"^Answer: (.*)$", re.M)
_INSTRUCTION = re.compile(r"^Instruction: (.*)$", re.M)


@dataclass
class Reading:
    """What the oracle made of one chat input."""

    task: str  # e.g. "image-gen/pair"
    fractions: list[float]  # per candidate, the fraction of required facts it gets right
    label: Any  # pair: 1, 2 or "tie"; point: the score on the task's scale


class OracleBackend(Backend):
    name = "sandbox-oracle"
    supports_probs = True

    def __init__(self, confidence: float = 0.98):
        if not 0.0 < confidence <= 1.0:
            raise ValueError(f"confidence must be in (0, 1], got {confidence}")
        self.confidence = confidence
        self.calls = 0

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "confidence": self.confidence}

    # -- reading -------------------------------------------------------------------------------------------------
    def read(self, x: ChatInput) -> Reading:
        """Judge one input exactly (raises BackendError if it is not a sandbox judge input)."""
        from ..media import Video
        from ..tasks import get_task

        text = "\n".join(p for p in x.parts if isinstance(p, str))
        media = [p for p in x.parts if not isinstance(p, str)]
        if not media:
            raise BackendError("OracleBackend: the input shows no image or video")
        modality = "video" if isinstance(media[0], Video) else "image"
        arrays = [p.to_array() if isinstance(p, Video) else np.asarray(p.convert("RGB")) for p in media]
        question, instruction = _QUESTION.search(text), _INSTRUCTION.search(text)
        if instruction is not None:  # editing: instruction, source image, edited candidates
            fractions = edit_fractions(instruction.group(1).strip(), arrays)
            task = get_task(f"image-edit/{'pair' if len(arrays) == 3 else 'point'}")
        elif question is None:  # generation: caption + candidate media
            caption = _PROMPT.search(text)
            if caption is None or oracle.parse_caption(caption.group(1)) is None:
                raise BackendError("OracleBackend: no sandbox caption ('Prompt: a red circle at ...') in the input")
            kind = "pair" if len(arrays) == 2 else "point"
            fractions = [oracle.score_media(caption.group(1).strip(), a) for a in arrays]
            task = get_task(f"{modality}-gen/{kind}")
        else:
            q = question.group(1).strip()
            pairs = sorted(_ANSWER_N.findall(text))
            answers = [a for _, a in pairs] if pairs else [m.group(1) for m in _ANSWER_1.finditer(text)]
            if not answers or len(arrays) != 1:
                raise BackendError("OracleBackend: an understanding input needs one image or video and answers")
            try:
                fractions = [answer_fraction(q, a, arrays[0]) for a in answers]
            except ValueError as e:
                raise BackendError(f"OracleBackend: {e}") from None
            task = get_task(f"{modality}-und/{'pair' if len(answers) == 2 else 'point'}")
        if task.is_pair:
            f1, f2 = fractions
            label: Any = 1 if f1 > f2 else 2 if f2 > f1 else "tie"
        else:
            fmt = task.answer
            label = fmt.low + round((fmt.high - fmt.low) * fractions[0])
        return Reading(task.name, fractions, label)

    # -- the two request types -----------------------------------------------------------------------------------
    def choice_probs(self, inputs: Sequence[ChatInput], prefix: str, choices: Sequence[str]) -> list[list[float]]:
        from ..tasks import get_task

        self.calls += len(inputs)
        rows = []
        for x in inputs:
            r = self.read(x)
            want = get_task(r.task).answer.choices().get(r.label)
            right = [i for i, c in enumerate(choices) if c == want]
            if len(right) != 1:
                raise BackendError(f"OracleBackend: cannot match verdict {r.label!r} to the choices {list(choices)}")
            rest = (1.0 - self.confidence) / max(len(choices) - 1, 1)
            rows.append([self.confidence if i == right[0] else rest for i in range(len(choices))])
        return rows

    def generate(self, inputs: Sequence[ChatInput], max_new_tokens: int = 256, stop: Sequence[str] | None = None,
                 prefix: str = "") -> list[str]:
        from ..tasks import get_task

        self.calls += len(inputs)
        out = []
        for x in inputs:
            r = self.read(x)
            text = get_task(r.task).target(r.label)
            out.append(text[len(prefix):] if prefix and text.startswith(prefix) else text)
        return out


def edit_fractions(instruction: str, arrays: list[np.ndarray]) -> list[float]:
    """The edit score of each candidate (arrays 1..k) against the source (array 0), from the pixels."""
    if oracle.parse_instruction(instruction) is None:
        raise BackendError(f"OracleBackend: not a sandbox edit instruction: {instruction!r}")
    if len(arrays) not in (2, 3) or any(np.asarray(a).ndim != 3 for a in arrays):
        raise BackendError("OracleBackend: an edit input needs a source image and one or two edited images")
    source = oracle.read_image(arrays[0])
    return [oracle.edit_score(instruction, source, oracle.read_image(a)) for a in arrays[1:]]


def answer_fraction(question: str, answer: str, pixels: np.ndarray) -> float:
    """Fraction of the asked facts an answer gets right, against what the pixels show."""
    shown = oracle.read_media(pixels)
    attr = oracle.question_attribute(question)
    keys = [k for k in ("colour", "shape", "position", "motion") if k in shown] if attr == "describe" else [attr]
    if not keys:
        return 0.0
    stated = oracle.parse_answer(question, answer)
    return sum(stated.get(k) is not None and stated.get(k) == shown.get(k) for k in keys) / len(keys)


__all__ = ["OracleBackend", "Reading", "answer_fraction", "edit_fractions"]
