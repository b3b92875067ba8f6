"""The renderer: (judge spec, task, request) -> the chat input the judge receives. The one path from a request to
the judge's prompt for in-process judging, the OpenAI backend, training, construct, bench, serve and the dry run.

    p = prepare(spec, task, "a red circle", ["a.png", "b.png"])      # media loaded under the spec's policies
    chat = render(task, p, swap=False)                               # ChatInput: text parts, images, videos
    chat.messages()                                                  # the user turn as chat messages

Media are loaded by `load` (or the `loader` a caller passes, e.g. the dry run's, which remembers file names).
A request no model could judge (missing or non-text prompt, a candidate missing, undecodable media, a task that
needs media it was not given) is kept with its `error`; nothing is raised for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..backends.base import ChatInput
from ..errors import MediaError, TaskError
from ..tasks import Task
from .spec import JudgeSpec


@dataclass
class PairRequest:
    prompt: str
    a: Any  # generation / edit: media; understanding: answer text
    b: Any
    media: Any = None  # understanding: the image or video the answers are about; edit: the source image
    id: str | None = None


@dataclass
class PointRequest:
    prompt: str
    candidate: Any
    media: Any = None
    id: str | None = None


@dataclass
class Prepared:
    """A request with its media loaded, ready to render in either order."""

    prompt: str
    candidates: list[Any]
    context: Any = None  # understanding: the image / video the answers are about; edit: the source image
    error: str | None = None  # why it cannot be judged (then it is never rendered)
    extra: dict = field(default_factory=dict)

    def pair(self, i: int, j: int) -> "Prepared":
        """The pair (candidate i shown first, candidate j second) of a prepared group."""
        return Prepared(self.prompt, [self.candidates[i], self.candidates[j]], self.context, self.error)


Loader = Callable[[JudgeSpec, Task, Any], Any]


def load(spec: JudgeSpec, t: Task, src: Any) -> Any:
    """One image or video of task `t`, loaded under the spec's policy for it."""
    from ..media import load_media

    policy = spec.media_policy(t)
    if t.modality == "video":
        return load_media(src, "video", video_policy=policy, allow_urls=spec.allow_urls)
    return load_media(src, t.modality, image_policy=policy, allow_urls=spec.allow_urls)


def prepare(spec: JudgeSpec, t: Task, prompt: Any, candidates: Sequence[Any], media: Any = None,
            loader: Loader | None = None) -> Prepared:
    """Check and load one request of task `t`: generation candidates are media; understanding candidates are
    answer texts about `media`; edit candidates are edited images of the source image `media`."""
    loader = loader or load
    problem = input_problem(t, prompt, candidates)
    if problem:
        return Prepared(prompt, list(candidates), error=problem)
    try:
        if t.domain == "gen":
            if media is not None:
                return Prepared(prompt, list(candidates),
                                error=f"task {t.name} judges generated media: pass candidates, not `media`")
            return Prepared(prompt, [loader(spec, t, c) for c in candidates])
        if t.domain == "edit":
            shows_source = t.shows is None or 0 in t.shows
            if media is None and shows_source:
                return Prepared(prompt, list(candidates),
                                error=f"task {t.name} needs the source image that was edited (`media=`)")
            source = loader(spec, t, media) if media is not None and shows_source else None
            return Prepared(prompt, [loader(spec, t, c) for c in candidates], context=source)
        if media is None:
            return Prepared(prompt, list(candidates),
                            error=f"task {t.name} needs the {t.modality} the answers are about (`media=`)")
        return Prepared(prompt, [str(c) for c in candidates], context=loader(spec, t, media))
    except MediaError as e:
        return Prepared(prompt, list(candidates), error=str(e))


def render(t: Task, p: Prepared, swap: bool = False) -> ChatInput:
    """The user turn of a prepared request through the task's template; `swap` shows the two candidates of a
    pair in the other order. A video of a family that sends frames (`Task.video_frames`) becomes its frames."""
    if p.error is not None:
        raise TaskError(p.error)
    cands = p.candidates[::-1] if swap else p.candidates
    if t.domain == "gen":
        media, parts = list(cands), t.render(p.prompt, num_media=len(cands))
    elif t.domain == "edit":  # media 0 is the source image, 1..k the edited candidates
        media = [p.context, *cands]
        parts = t.render(p.prompt, num_media=len(media))
    else:
        media, parts = [p.context], t.render(p.prompt, answers=cands)
    out: list[Any] = []
    for x in parts:
        if isinstance(x, str):
            out.append(x)
        elif t.video_frames and hasattr(media[x], "frames"):  # a video sent as its frames, as images
            out.extend(media[x].frames)
        else:
            out.append(media[x])
    return ChatInput(out)


def sample_request(t: Task, media: list[Any], answers: Sequence[str] | None) -> tuple[Any, list[Any]]:
    """(context media, candidates) of a stored sample whose media are in template order (generation: the
    candidates; edit: the source, then the edited candidates; understanding: the one image or video)."""
    if t.domain == "gen":
        return None, list(media)
    if t.domain == "edit":
        shows_source = t.shows is None or 0 in t.shows
        return (media[0], list(media[1:])) if shows_source else (None, list(media))
    if len(media) != 1:
        raise TaskError(f"task {t.name} takes one {t.modality}, got {len(media)}")
    return media[0], list(answers or [])


_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: Any, what: str, allow_empty: bool = False) -> str | None:
    """Why `value` cannot be given to the judge as text (None when it can): missing, not a string, empty, or
    holding a lone surrogate (e.g. bytes decoded with errors="surrogateescape"), which no tokenizer encodes."""
    if value is None:
        return f"{what} is missing"
    if not isinstance(value, str):
        return f"{what} must be a string, got {type(value).__name__}"
    if not allow_empty and not value.strip():
        return f"{what} is empty"
    m = _SURROGATE.search(value)
    if m:
        return (f"{what} holds a lone surrogate ({ascii(m.group())} at character {m.start()}), which is not valid "
                "Unicode text; decode its source bytes properly (e.g. errors='replace') and send it again")
    return None


def input_problem(t: Task, prompt: Any, candidates: Sequence[Any]) -> str | None:
    """The first problem of a request's prompt and candidates that no model could judge, or None."""
    problem = text_problem(prompt, "prompt")
    if problem:
        return problem
    names = ["a", "b"] if len(candidates) == 2 else [str(i) for i in range(len(candidates))]
    for name, c in zip(names, candidates):
        what = f"candidate {name}"
        if t.domain == "und":
            problem = text_problem(c, f"{what} (an answer)", allow_empty=True)
        elif c is None:
            problem = f"{what} is missing"
        if problem:
            return problem
    return None
