"""The unified sample record: one format for training data, benchmark items and constructed preferences.

One JSON object per line. Media paths are relative to the JSONL file's folder unless absolute. A media item is
a path (image or video file) or a list of paths (the frames of one video, in order).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import DataError

SCHEMA_VERSION = 1


@dataclass
class Sample:
    id: str
    task: str  # a registry name, e.g. "image-gen/pair" or "image-gen/point+dims"
    prompt: str  # the caption (generation) or the question (understanding)
    media: list[Any]  # gen: the candidates; und: the one context image or video
    label: Any  # pair: 1, 2 or "tie"; point: a number on the task's scale
    target: str = ""  # the answer text, rendered by the task's answer format
    answers: list[str] = field(default_factory=list)  # und: the candidate answers
    rationale: str | None = None
    dimensions: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    version: int = SCHEMA_VERSION

    def render_target(self) -> "Sample":
        """Fill `target` from the task's answer format (so targets and parsers cannot drift apart)."""
        from ..tasks import get_task

        self.target = get_task(self.task).target(self.label, rationale=self.rationale,
                                                 dimensions=self.dimensions or None)
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict, where: str = "record") -> "Sample":
        from ..tasks import get_task

        missing = [k for k in ("id", "task", "prompt", "media", "label") if k not in d]
        if missing:
            raise DataError(f"{where}: missing field(s) {missing}; a unified sample needs id, task, prompt, media, "
                            "label")
        if d.get("version", SCHEMA_VERSION) > SCHEMA_VERSION:
            raise DataError(f"{where}: record version {d['version']} is newer than this unireward "
                            f"({SCHEMA_VERSION}); upgrade")
        try:
            task = get_task(d["task"])
        except Exception as e:
            raise DataError(f"{where}: field 'task': {e}") from None
        label = d["label"]
        if task.is_pair and label not in (1, 2, "tie"):
            raise DataError(f"{where}: field 'label' must be 1, 2 or 'tie' for {task.name}, got {label!r}")
        if not task.is_pair and not isinstance(label, (int, float)):
            raise DataError(f"{where}: field 'label' must be a number for {task.name}, got {label!r}")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    def media_paths(self, root: str | Path) -> list[Any]:
        """Media with relative paths resolved against `root` (the JSONL file's folder)."""
        def res(p):
            if isinstance(p, list):
                return [res(x) for x in p]
            q = Path(p)
            return str(q if q.is_absolute() else Path(root) / q)
        return [res(m) for m in self.media]


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield i, json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{i}: not valid JSON ({e.msg})") from None


def read_samples(path: str | Path) -> Iterator[Sample]:
    """Read a JSONL file of samples; errors name the file and line."""
    for i, d in read_jsonl(path):
        yield Sample.from_dict(d, where=f"{path}:{i}")


def write_samples(path: str | Path, samples: Iterable[Sample], append: bool = False) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("a" if append else "w") as f:
        for s in samples:
            f.write(s.to_json() + "\n")
            n += 1
    return n
