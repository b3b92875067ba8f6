"""The released judge families, loaded from families.yaml: (family, task, variant) -> Task.

A family's Task is the registry task of the same name (modality, domain, kind) with the authors' prompt
(a verbatim template file under templates/released/, its source script named in its first line), their answer
format (family_formats.py) and how their script sends media (all media first; videos as frames where it does).
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Sequence

from ..errors import TaskError
from .family_formats import build_format
from .registry import HERE, Task, builtin_tasks

OURS = "unireward"


@cache
def _spec() -> dict:
    import yaml

    return yaml.safe_load((HERE / "families.yaml").read_text())


@cache
def _families() -> dict[str, dict[str, list[Task]]]:
    spec = _spec()
    formats = {name: build_format(name, f) for name, f in spec["formats"].items()}
    out: dict[str, dict[str, list[Task]]] = {}
    for family, tasks in spec["families"].items():
        out[str(family)] = {}
        for name, variants in tasks.items():
            base = builtin_tasks()[name]
            out[str(family)][name] = [_task(base, str(family), v, spec, formats) for v in variants]
    return out


def _task(base: Task, family: str, v: dict, spec: dict, formats: dict) -> Task:
    prompt = spec["prompts"][v["prompt"]]
    fmt = formats[v["format"]]
    if fmt.kind != base.kind:
        raise TaskError(f"families.yaml: {family} {base.name} variant {v['variant']}: a {fmt.kind} format "
                        f"on a {base.kind} task")
    path = Path("released") / prompt["file"]
    return dataclasses.replace(
        base, template_source=(HERE / "templates" / path).read_text(), template_name=str(path), answer=fmt,
        available_dimensions=(), family=family, variant=str(v["variant"]),
        source=f"{prompt['source']}@{spec['commit']}", media_first=True, video_frames=prompt.get("video_frames"),
        shows=tuple(prompt["shows"]) if "shows" in prompt else None, dims_variant=bool(v.get("dims", False)))


def list_families() -> list[str]:
    return [OURS, *_families()]


def family_tasks(family: str) -> dict[str, list[str]]:
    """Task name -> the family's variant names for it, the default first."""
    if family == OURS:
        return {name: ["default"] for name in builtin_tasks()}
    return {name: [t.variant for t in ts] for name, ts in _table(family).items()}


def _table(family: str) -> dict[str, list[Task]]:
    try:
        return _families()[str(family)]
    except KeyError:
        raise TaskError(f"unknown family {family!r}; known: {', '.join(list_families())}") from None


def family_task(name: str, family: str, variant: str | None = None,
                dimensions: Sequence[str] | bool = False) -> Task:
    """The family's task `name` ("image-gen/point", "image-gen/point+dims"), its default prompt unless
    `variant` names another, or its per-dimension prompt for "+dims" / dimensions=True."""
    base, _, plus = name.partition("+")
    if plus not in ("", "dims"):
        raise TaskError(f"unknown task variant {plus!r} in {name!r}; the only marker is '+dims' (use variant=)")
    table = _table(family)
    if base not in table:
        raise TaskError(f"family {family} has no prompt for task {base!r}; it covers: {', '.join(table)}")
    options = table[base]
    if dimensions not in (False, True, None) and dimensions != ():
        raise TaskError(f"family {family}: released prompts fix their dimensions; pass dimensions=True or '+dims'")
    if variant not in (None, "default"):
        match = [t for t in options if t.variant == variant]
        if not match:
            raise TaskError(f"family {family} has no variant {variant!r} for {base}; "
                            f"variants: {', '.join(t.variant for t in options)}")
        return match[0]
    if plus == "dims" or dimensions is True:
        match = [t for t in options if t.dims_variant]
        if not match:
            raise TaskError(f"family {family} has no per-dimension prompt for {base}; "
                            f"variants: {', '.join(t.variant for t in options)}")
        return match[0]
    return options[0]
