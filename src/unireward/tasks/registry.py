"""The task registry: name -> Task (template + answer format + parser + version).

Tasks are declared in `registry.yaml` beside this file; templates live in `templates/`. A user can pass their
own Jinja template (a path) to `get_task(name, template=...)`; it receives the same variables.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Sequence

from ..errors import TaskError
from .formats import AnswerFormat, PairFormat, PointFormat

HERE = Path(__file__).parent
MEDIA_TOKEN = "\x00media:{}\x00"
_MEDIA_RE = re.compile("\x00media:(\\d+)\x00")


@dataclass(frozen=True)
class Task:
    name: str  # e.g. "image-gen/pair"
    modality: str  # "image" | "video"
    domain: str  # "gen" (candidates are media) | "und" (text answers about one media) | "edit" (see render)
    kind: str  # "pair" | "point"
    template_source: str  # Jinja text
    template_name: str  # file name or user path, for manifests
    answer: AnswerFormat
    version: int
    available_dimensions: tuple[str, ...] = ()
    # released families (families.yaml); the defaults are unireward's own templates
    family: str = "unireward"
    variant: str = "default"
    source: str | None = None  # the authors' script and commit the prompt comes from
    media_first: bool = False  # all media parts before the one text part, as every released script sends them
    video_frames: int | None = None  # send each video as this many frames, as images; None = a video part
    shows: tuple[int, ...] | None = None  # which of the request's media the prompt shows (None: all, in order)
    dims_variant: bool = False  # the family's per-dimension prompt (what "+dims" picks)

    @property
    def is_pair(self) -> bool:
        return self.kind == "pair"

    @property
    def key(self) -> str:
        """Name plus variant marker; what results, caches and manifests record (a released family's variant is
        recorded beside it: results carry `family` and `variant`)."""
        return self.name + ("+dims" if self.answer.dimensions else "")

    @property
    def template_hash(self) -> str:
        return hashlib.sha256(self.template_source.encode()).hexdigest()[:12]

    @property
    def num_candidates(self) -> int:
        return 2 if self.is_pair else 1

    @property
    def num_media(self) -> int:
        """How many media items one request shows: the candidates (gen), the context (und), source + edits."""
        return {"gen": self.num_candidates, "und": 1, "edit": 1 + self.num_candidates}[self.domain]

    def with_dimensions(self, dims: Sequence[str] | bool = True) -> "Task":
        """The same task asking for per-dimension judgements first (generation tasks only)."""
        if dims is True:
            dims = self.available_dimensions
        dims = tuple(dims or ())
        bad = [d for d in dims if d not in self.available_dimensions]
        if bad:
            raise TaskError(f"task {self.name} has no dimension(s) {bad}; available: {list(self.available_dimensions)}")
        return dataclasses.replace(self, answer=dataclasses.replace(self.answer, dimensions=dims))

    def with_template(self, path: str | Path) -> "Task":
        p = Path(path)
        if not p.is_file():
            raise TaskError(f"template file {p} does not exist; pass a Jinja file with the task's variables")
        return dataclasses.replace(self, template_source=p.read_text(), template_name=str(p))

    # -- rendering --------------------------------------------------------------------------------------------
    def render(self, prompt: str, answers: Sequence[str] = (), num_media: int | None = None) -> list[str | int]:
        """Render the user turn as a list of text parts and media indices (ints, in template order).

        Generation tasks show media 0..k-1 (the candidates); understanding tasks show media 0 (the context)
        and the candidate `answers` as text; edit tasks show media 0 (the source image) and 1..k (the edited
        candidates), the prompt being the edit instruction.
        """
        if self.domain == "und" and len(answers) != self.num_candidates:
            raise TaskError(f"task {self.name} needs {self.num_candidates} answer(s), got {len(answers)}")
        text = _compiled(self.template_source).render(
            prompt=_clean(prompt),
            answers=[_clean(a) for a in answers],
            media=lambda i: MEDIA_TOKEN.format(int(i)),
            modality=self.modality,
            Noun=self.modality.capitalize(),
            dimensions=list(self.answer.dimensions),
            answer_format=self.answer.instructions(),
            task=self.name,
        )
        if self.media_first:
            return self._media_first(text, num_media)
        parts: list[str | int] = []
        pos = 0
        for m in _MEDIA_RE.finditer(text):
            if m.start() > pos:
                parts.append(text[pos:m.start()])
            parts.append(int(m.group(1)))
            pos = m.end()
        if pos < len(text):
            parts.append(text[pos:])
        expected = num_media if num_media is not None else self.num_media
        shown = sorted(p for p in parts if isinstance(p, int))
        if shown != list(range(expected)):
            raise TaskError(f"template {self.template_name} shows media {shown}, task {self.name} needs "
                            f"{list(range(expected))}; use {{{{ media(i) }}}} once per media item")
        return parts

    def _media_first(self, text: str, num_media: int | None) -> list[str | int]:
        if _MEDIA_RE.search(text):
            raise TaskError(f"template {self.template_name} places media itself; task {self.name} of family "
                            f"{self.family} sends all media before the text")
        n = num_media if num_media is not None else self.num_media
        return [*(self.shows if self.shows is not None else range(n)), text]

    def content(self, prompt: str, answers: Sequence[str] = (), num_media: int | None = None) -> list[dict]:
        """The user turn as the backends send it: {"type": "text", "text"}, {"type": "image"|"video", "media": i},
        and, where videos go as frames, {"type": "image", "media": i, "frame": k} for k < video_frames."""
        out: list[dict] = []
        for p in self.render(prompt, answers, num_media):
            if isinstance(p, str):
                out.append({"type": "text", "text": p})
            elif self.modality == "video" and self.video_frames:
                out += [{"type": "image", "media": p, "frame": k} for k in range(self.video_frames)]
            else:
                out.append({"type": self.modality, "media": p})
        return out

    def target(self, label: Any, rationale: str | None = None, dimensions: dict | None = None) -> str:
        """The answer text a judge is trained to produce for `label` (winner or score)."""
        return self.answer.target(label, rationale=rationale, dimensions=dimensions)

    def parse(self, text: str, strict: bool = False):
        """The format's verdict (PairVerdict / PointVerdict, with its `reward`)."""
        return self.answer.parse(text, strict=strict)


def _clean(s: str) -> str:
    # user text may not smuggle in media placeholders
    return str(s).replace("\x00", "")


@cache
def _environment():
    import jinja2

    return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
                              trim_blocks=True, autoescape=False)


@lru_cache(maxsize=64)
def _compiled(source: str):
    return _environment().from_string(source)


@cache
def builtin_tasks() -> dict[str, Task]:
    """unireward's own tasks by name, as registry.yaml defines them (read once)."""
    import yaml

    spec = yaml.safe_load((HERE / "registry.yaml").read_text())
    tasks = {}
    for name, d in spec.items():
        if d["kind"] == "pair":
            noun = d["noun"]
            fmt: AnswerFormat = PairFormat(noun=noun, allow_ties=d.get("allow_ties", True))
        else:
            low, high = d["scale"]
            fmt = PointFormat(low=low, high=high, subject=d["modality"])
        tasks[name] = Task(
            name=name, modality=d["modality"], domain=d["domain"], kind=d["kind"],
            template_source=(HERE / "templates" / d["template"]).read_text(), template_name=d["template"],
            answer=fmt, version=int(d["version"]), available_dimensions=tuple(d.get("dimensions", ())),
        )
    return tasks


def list_tasks() -> list[str]:
    return list(builtin_tasks())


def get_task(name: str | Task, *, family: str | None = "unireward", variant: str | None = None,
             dimensions: Sequence[str] | bool = False, template: str | Path | None = None) -> Task:
    """Look a task up by name ("image-gen/pair"; "image-gen/point+dims" asks for dimensions).

    `family` picks a released judge family's prompt for the task ("1.0", "2.0", "think", "edit", "flex"; see
    families.yaml), `variant` one of its non-default prompts by name; "+dims" / `dimensions=True` pick the
    family's per-dimension prompt where it has one.
    """
    if family not in (None, "unireward") and not isinstance(name, Task):
        from .families import family_task

        task = family_task(name, family, variant, dimensions)
        return task.with_template(template) if template is not None else task
    if variant not in (None, "default") and not isinstance(name, Task):
        raise TaskError(f"unireward's own tasks have no variant {variant!r}; variants belong to released "
                        f"families (family=...)")
    if isinstance(name, Task):
        task = name
    else:
        base, _, variant = name.partition("+")
        try:
            task = builtin_tasks()[base]
        except KeyError:
            raise TaskError(f"unknown task {name!r}; known tasks: {', '.join(list_tasks())}") from None
        if variant == "dims":
            dimensions = dimensions or True
        elif variant:
            raise TaskError(f"unknown task variant {variant!r} in {name!r}; the only variant is '+dims'")
    if dimensions:
        task = task.with_dimensions(dimensions)
    if template is not None:
        task = task.with_template(template)
    return task
