"""GRPO of a VLM policy with TRL's `GRPOTrainer` and unireward's judge as the reward: a config and a plain function.

    python -c "from unireward.rewards.recipe import main; main()" --config grpo/qwen2_5_vl_3b_vllm_judge
    accelerate launch --config_file src/unireward/configs/accelerate/zero2.yaml -m unireward.rewards.recipe \
        --config grpo/qwen2_5_vl_3b_vllm_judge steps=500

Data: a JSONL of {"question", "image" (a path), "answer"? (a reference answer)}. Rewards (weights > 0 only):
the judge's pointwise score of each answer (`point_weight`, task `point_task`), and P(answer > reference) over
both orders (`reference_weight`, task `pair_task`). The judge is a `unireward serve` URL (`judge_kind:
unireward`), an OpenAI-compatible endpoint such as vLLM serving a released UnifiedReward checkpoint
(`judge_kind: openai`, `served_model`), or a judge folder loaded in this process.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class VLMGRPOConfig:
    model: str = ""  # the policy: a local folder or hub id of an image-text-to-text model
    data: str = ""  # JSONL of {"question", "image", "answer"?}
    judge: str = ""  # URL of `unireward serve` or of an OpenAI-compatible server, or a judge folder
    judge_kind: str = "unireward"  # unireward | openai
    served_model: str | None = None  # the judge's model name on an OpenAI-compatible server
    checkpoint: str | None = None  # the registered checkpoint that server runs (its prompt family): `unireward models`
    api_key_env: str = "UNIREWARD_API_KEY"  # environment variable holding the judge server's key, if any
    point_weight: float = 1.0
    point_task: str = "image-und/point"
    reference_weight: float = 0.0
    pair_task: str = "image-und/pair"
    num_generations: int = 8
    max_completion_length: int = 256
    temperature: float = 1.0
    lr: float = 1e-6
    beta: float = 0.04  # KL to the reference policy
    batch_size: int = 8  # per device; a multiple of num_generations / devices as TRL requires
    grad_accum: int = 1
    steps: int = 1000
    bf16: bool = True
    use_vllm: bool = False  # TRL's own vLLM generation for the policy (not the judge)
    gradient_checkpointing: bool = False
    logging_steps: int = 10
    save_steps: int = 200
    output_dir: str = "outputs/grpo_vlm"
    seed: int = 0
    use_cpu: bool = False


def read_rows(path: str | Path) -> Any:
    """The JSONL as a `datasets.Dataset` in TRL's conversational VLM form (prompt messages + `image`)."""
    from datasets import Dataset, Image

    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    data = {"prompt": [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": r["question"]}]}]
                       for r in rows],
            "image": [r["image"] for r in rows]}
    if all("answer" in r for r in rows):
        data["answer"] = [r["answer"] for r in rows]
    return Dataset.from_dict(data).cast_column("image", Image())


def reward_funcs(cfg: VLMGRPOConfig) -> tuple[list, list[float]]:
    from .adapters import trl_reward
    from .client import connect

    kw: dict[str, Any] = {}
    if cfg.judge.startswith(("http://", "https://")):
        key = os.environ.get(cfg.api_key_env)
        if key:
            kw["api_key"] = key
        if cfg.judge_kind == "openai":
            kw.update(served_model=cfg.served_model, checkpoint=cfg.checkpoint)
    judge = connect(cfg.judge, kind=cfg.judge_kind, **kw)
    funcs, weights = [], []
    if cfg.point_weight:
        funcs.append(trl_reward(judge, task=cfg.point_task, asynchronous=True))
        weights.append(cfg.point_weight)
    if cfg.reference_weight:
        funcs.append(trl_reward(judge, task=cfg.pair_task, reference_column="answer", asynchronous=True))
        weights.append(cfg.reference_weight)
    if not funcs:
        raise ValueError("give point_weight or reference_weight a positive weight")
    return funcs, weights


def build_trainer(cfg: VLMGRPOConfig, dataset=None):
    from trl import GRPOConfig, GRPOTrainer

    funcs, weights = reward_funcs(cfg)
    args = GRPOConfig(output_dir=cfg.output_dir, per_device_train_batch_size=cfg.batch_size,
                      gradient_accumulation_steps=cfg.grad_accum, num_generations=cfg.num_generations,
                      max_completion_length=cfg.max_completion_length, temperature=cfg.temperature,
                      learning_rate=cfg.lr, beta=cfg.beta, max_steps=cfg.steps, bf16=cfg.bf16, use_vllm=cfg.use_vllm,
                      activation_checkpointing=cfg.gradient_checkpointing, logging_steps=cfg.logging_steps,
                      save_steps=cfg.save_steps, seed=cfg.seed, reward_weights=weights, report_to=[],
                      use_cpu=cfg.use_cpu)
    return GRPOTrainer(model=cfg.model, reward_funcs=funcs, args=args,
                       train_dataset=dataset if dataset is not None else read_rows(cfg.data))


def run_vlm_grpo(cfg: VLMGRPOConfig):
    trainer = build_trainer(cfg)
    trainer.train()
    trainer.save_model(cfg.output_dir)
    return trainer


def main(argv=None) -> None:
    import argparse

    from ..config import load_config

    p = argparse.ArgumentParser(description="GRPO of a VLM policy with unireward's judge as the reward")
    p.add_argument("--config", required=True)
    p.add_argument("overrides", nargs="*", help="key=value")
    a = p.parse_args(argv if argv is not None else sys.argv[1:])
    run_vlm_grpo(load_config(VLMGRPOConfig, a.config, a.overrides))


if __name__ == "__main__":
    main()
