"""Training recipes: each is a config dataclass plus one plain function.

- `rejection`: rejection sampling of a judge's own reasoning into SFT data and a hard set (`run_rejection`);
- `grpo_judge`: GRPO of a reasoning judge on verdict accuracy + format, on TRL's GRPOTrainer (`run_grpo_judge`);
- `diffusion_dpo`: Diffusion-DPO for image and video generators (`train_diffusion_dpo`,
  `train_diffusion_dpo_from_config`); the loss itself lives in `diffusion_loss`.

Importing this package is cheap; torch, diffusers and accelerate load with the recipe modules.
"""

from importlib import import_module
from typing import Any

_LAZY = {
    "DiffusionDPOConfig": "unireward.train.diffusion_dpo",
    "DiffusionDPOResult": "unireward.train.diffusion_dpo",
    "train_diffusion_dpo": "unireward.train.diffusion_dpo",
    "train_diffusion_dpo_from_config": "unireward.train.diffusion_dpo",
    "load_dpo_config": "unireward.train.diffusion_dpo",
    "diffusion_dpo_loss": "unireward.train.diffusion_loss",
    "RejectConfig": "unireward.train.rejection",
    "run_rejection": "unireward.train.rejection",
    "GRPOJudgeConfig": "unireward.train.grpo_judge",
    "run_grpo_judge": "unireward.train.grpo_judge",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'unireward.train' has no attribute {name!r}")
