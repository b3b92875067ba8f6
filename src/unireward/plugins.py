"""Components that configs name, found by name: the library never imports the sandbox or a user's code.

A name is either a `module:attr` path (any importable object, `attr` may be dotted: `pkg.mod:Cls.build`) or a short
name that an installed distribution declares as an entry point in the group `unireward.<kind>`. unireward declares
the sandbox's own in its pyproject.toml, exactly as a user's package declares theirs:

    [project.entry-points."unireward.judges"]
    oracle = "unireward.sandbox.oracle_judge:OracleBackend"

Entry points are read from installed metadata (`pip install -e .` writes it; reinstall after editing the table).
What a kind's object must be is said where the kind is used:

- `judges`: a callable of no arguments returning a judge `Backend` (construct's `judge:`);
- `samplers`: `(policy_model, *, steps) -> sampler` (construct's `sampler:`);
- `generators`: `(pretrained_model, resolution) -> Diffusion-DPO components` (diffusion_dpo's `generator:`);
- `datasets`: `(value, **settings) -> path of a Sample JSONL` (a `{name: value, ...}` data entry of SFT, rejection
  sampling and GRPO);
- `benchmarks`: `(data, split, task) -> Benchmark` (`unireward bench NAME`).
"""

from __future__ import annotations

import re
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from .errors import ConfigError

KINDS = ("judges", "samplers", "generators", "datasets", "benchmarks")
_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def is_path(name: str) -> bool:
    """Whether `name` is a `module:attr` path rather than a short name."""
    return bool(_PATH.fullmatch(str(name)))


def names(kind: str) -> list[str]:
    """The short names that installed distributions declare for `kind`, sorted."""
    return sorted({ep.name for ep in _entry_points(kind)})


def known(kind: str, name: str) -> bool:
    """Whether `name` can name a `kind`: a `module:attr` path or a declared short name (nothing is imported)."""
    return is_path(name) or name in names(kind)


def load(kind: str, name: str) -> Any:
    """The object that `name` (a `module:attr` path or a declared short name) names for `kind`."""
    if is_path(name):
        module, _, attr = name.partition(":")
        try:
            obj: Any = import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"{kind[:-1]} {name!r}: cannot import it ({e})") from None
        return obj
    found = [ep for ep in _entry_points(kind) if ep.name == name]
    if not found:
        declared = ", ".join(names(kind)) or "none"
        raise ConfigError(f"no {kind[:-1]} named {name!r} (declared: {declared}); name one by `module:attr`, or "
                          f"declare it in the entry-point group unireward.{kind} of an installed package "
                          "(after editing pyproject.toml, reinstall: pip install -e .)")
    return found[0].load()


def _entry_points(kind: str):
    if kind not in KINDS:
        raise ValueError(f"unknown plugin kind {kind!r}; one of {KINDS}")
    return entry_points(group=f"unireward.{kind}")


__all__ = ["KINDS", "is_path", "known", "load", "names"]
