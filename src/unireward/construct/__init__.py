"""Preference-data construction: sample N candidates from the model being aligned, judge them, keep one pair.

- `candidates`: samplers (a VLM answering questions, diffusers text-to-image / text-to-video pipelines, or a
  sampler plugin such as the sandbox generator), each candidate with its own seed.
- `strategies`: pair-then-point (the paper's), pair-only, point-only, random, as pure functions.
- `export`: to TRL's DPO format and to the Diffusion-DPO trainer's dataset (the records file itself is
  `unireward.data.records`: crash-safe, append-only, keyed by prompt id).
- `run`: `ConstructConfig`, `construct(...)`, `run_construct(config)`, `run_construct_from_config(path, overrides)`.
- `merge`: `merge_construct(out, shard_dirs)`: the shard folders of a `shard=i/n` run -> what one run writes.

    unireward construct --config construct/sandbox_generator

Importing this package is cheap; torch, transformers and diffusers load when a sampler or judge is built.
"""

from importlib import import_module
from typing import Any

_LAZY = {
    "ConstructConfig": "unireward.construct.run",
    "ConstructResult": "unireward.construct.run",
    "construct": "unireward.construct.run",
    "run_construct": "unireward.construct.run",
    "run_construct_from_config": "unireward.construct.run",
    "merge_construct": "unireward.construct.merge",
    "PromptItem": "unireward.construct.candidates",
    "read_prompts": "unireward.construct.candidates",
    "export_records": "unireward.construct.export",
    "read_records": "unireward.data.records",
    "STRATEGIES": "unireward.construct.strategies",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'unireward.construct' has no attribute {name!r}")
