"""The scorer registry (scorers.yaml beside the judge registry): short name -> checkpoint, how it loads, its units
and the temperature of its pair link; and which registered scorer a local copy is.

    resolve_scorer("pickscore")                       # a short name, or a hub id (case-insensitive)
    find_scorer("/models/HPSv2/HPS_v2.1_compressed.pt")  # a local copy (folder or weights file), else None

Only the registry and small JSON files are read here, never weights.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ..registry import SIDECAR, load_entries, read_sidecar

KINDS = ("clip", "open_clip", "imagereward", "aesthetic")
_CACHE_DIR_RE = re.compile(r"models--([^/\\]+?)--([^/\\]+)")


@dataclass(frozen=True)
class ScorerSpec:
    """One registered scorer (see scorers.yaml for what each field means)."""

    name: str
    kind: str
    checkpoint: str
    weights: str | None = None
    processor: str | None = None
    backbone: str | None = None
    arch: str | None = None
    scale: float | str = 1.0
    clamp: bool = False
    temperature: float = 1.0
    prompted: bool = True
    units: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"scorer {self.name}: unknown kind {self.kind!r}; known: {', '.join(KINDS)}")
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ConfigError(f"scorer {self.name}: temperature must be a positive number, got {self.temperature!r}")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}




@cache
def _specs() -> dict[str, ScorerSpec]:
    return load_entries(Path(__file__).parent.parent / "scorers.yaml", ScorerSpec)


def list_scorers() -> list[ScorerSpec]:
    return list(_specs().values())


def resolve_scorer(name_or_id: Any) -> ScorerSpec | None:
    """The registered scorer with this short name or hub id (case-insensitive; a hub id holding several, e.g.
    xswu/HPSv2, gives the first listed), or None."""
    if not isinstance(name_or_id, str):
        return None
    key = name_or_id.strip().rstrip("/").lower()
    for spec in _specs().values():
        if key == spec.name.lower():
            return spec
    for spec in _specs().values():
        if key == spec.checkpoint.lower():
            return spec
    return None


def identify_scorer(path: str | Path) -> ScorerSpec | None:
    """The registered scorer a local copy is, or None. A weights file is known by its name
    (HPS_v2.1_compressed.pt, ImageReward.pt, ...); a folder by, in order: its unireward.json `scorer`, a
    registered weights file in it, a Hugging Face cache folder name (models--org--name), config.json
    `_name_or_path`, or the folder's own name being a registered checkpoint's (PickScore_v1)."""
    p = Path(path).expanduser()
    if p.is_file():
        return next((s for s in _specs().values() if s.weights and s.weights == p.name), None)
    if not p.is_dir():
        return None
    named = read_sidecar(p).get("scorer")
    if named is not None:
        spec = resolve_scorer(named)
        if spec is None:
            known = ", ".join(_specs())
            raise ConfigError(f"{p / SIDECAR}: scorer {named!r} is not registered; known: {known}")
        return spec
    for spec in _specs().values():
        if spec.weights and (p / spec.weights).is_file():
            return spec
    candidates = []
    m = _CACHE_DIR_RE.search(str(p.resolve()))
    if m:
        candidates.append(f"{m.group(1)}/{m.group(2)}")
    config = p / "config.json"
    if config.is_file():
        try:
            named_path = json.loads(config.read_text()).get("_name_or_path")
        except (json.JSONDecodeError, AttributeError):
            named_path = None
        if isinstance(named_path, str):
            candidates.append(named_path)
    for c in candidates:
        spec = resolve_scorer(c)
        if spec is not None:
            return spec
    base = p.resolve().name.lower()
    return next((s for s in _specs().values() if s.kind == "clip" and s.checkpoint.lower().rsplit("/", 1)[-1] == base),
                None)


def find_scorer(model: Any) -> ScorerSpec | None:
    """The scorer `RewardModel.load(model)` should run: a registered short name or hub id, or a local copy of
    one (`identify_scorer`); None for anything else (a judge)."""
    if not isinstance(model, str) or not model:
        return None
    if Path(model).expanduser().exists():
        return identify_scorer(model)
    return resolve_scorer(model)
