"""The model registry: short name -> checkpoint and the settings that suit it (see registry.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class ModelSpec:
    name: str
    checkpoint: str
    family: str
    method: str = "auto"
    max_new_tokens: int = 512


@cache
def _specs() -> dict[str, ModelSpec]:
    import yaml

    data = yaml.safe_load((Path(__file__).parent / "registry.yaml").read_text())
    return {name: ModelSpec(name=name, **fields) for name, fields in data.items()}


def list_models() -> list[ModelSpec]:
    return list(_specs().values())


def resolve(name_or_path: str) -> ModelSpec | None:
    """The spec for a registered short name, or None for a path / hub id used as is."""
    return _specs().get(name_or_path)
