"""Converters from public preference datasets (local copies, in their published layouts) to unified samples.

`SOURCES` maps a source name to its `convert(path, out_dir=None, **options) -> Iterator[Sample]`. Each module's
docstring names the published layout it reads and how its scores map onto the task scales.

    from unireward.data.sources import convert_source
    for sample in convert_source("hpd", "/data/HPDv2", split="train"):
        ...
"""

from __future__ import annotations

import inspect
from typing import Callable, Iterator

from ...errors import ConfigError
from ..schema import Sample
from . import evalmuse, hpd, lift_hra, llava_critic, oip, pickapic, sharegptvideo, videodpo, videofeedback

_MODULES = {
    "hpd": hpd,
    "evalmuse": evalmuse,
    "oip": oip,
    "pickapic": pickapic,
    "videodpo": videodpo,
    "lift_hra": lift_hra,
    "videofeedback": videofeedback,
    "llava_critic": llava_critic,
    "sharegptvideo_dpo": sharegptvideo,
}
SOURCES: dict[str, Callable[..., Iterator[Sample]]] = {name: m.convert for name, m in _MODULES.items()}


def list_sources() -> list[str]:
    return list(SOURCES)


def describe(name: str) -> str:
    """The first line of the converter's docstring (the dataset and the tasks it yields)."""
    doc = (_module(name).__doc__ or "").strip().split("\n\n")[0]
    return " ".join(doc.split())


def embeds_media(name: str) -> bool:
    """True when the source stores media as bytes, so converting it needs an out_dir to write them to."""
    return bool(getattr(_module(name), "EMBEDS_MEDIA", False))


def options(name: str) -> dict[str, object]:
    """The converter's options and their defaults."""
    sig = inspect.signature(SOURCES[_check(name)])
    return {k: p.default for k, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY}


def convert_source(name: str, path, out_dir=None, **opts) -> Iterator[Sample]:
    """Run one converter; unknown sources or options are a ConfigError listing the valid ones."""
    allowed = options(name)
    bad = sorted(set(opts) - set(allowed))
    if bad:
        raise ConfigError(f"source {name!r} has no option(s) {bad}; options: {sorted(allowed)}")
    return SOURCES[name](path, out_dir, **opts)


def _check(name: str) -> str:
    if name not in SOURCES:
        raise ConfigError(f"unknown source {name!r}; known sources: {', '.join(SOURCES)}")
    return name


def _module(name: str):
    return _MODULES[_check(name)]


__all__ = ["SOURCES", "convert_source", "describe", "embeds_media", "list_sources", "options"]
