"""unireward: unified multimodal reward models.

Importing the package is cheap; models, torch and transformers load on first use.

    from unireward import RewardModel
    rm = RewardModel.load("path/or/hub-id")
    rm.rank("a red circle", image_a, image_b, task="image-gen/pair", both_orders=True)
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "RewardModel": "unireward.judge",
    "PairResult": "unireward.results",
    "PointResult": "unireward.results",
    "GroupResult": "unireward.results",
    "get_task": "unireward.tasks",
    "list_tasks": "unireward.tasks",
    "Sample": "unireward.data.schema",
    "VideoPolicy": "unireward.media",
    "ImagePolicy": "unireward.media",
}

__all__ = list(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'unireward' has no attribute {name!r}")
