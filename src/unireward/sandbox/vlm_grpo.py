"""GRPO of the sandbox policy VLM with TRL's `GRPOTrainer`: the questions as a TRL dataset, the oracle as a reward,
and one function that trains a saved policy.

    items = loops.qa_items(240, "train", 2, 84, attributes=["describe"])
    point = trl_reward(judge, task="image-und/point")                       # the judge's pointwise score
    vs_ref = trl_reward(judge, task="image-und/pair", reference_column="answer")  # P(answer > the right answer)
    model, processor, history = grpo_policy("/tmp/base", items, [point], PolicyGRPOConfig(), seed=0,
                                            out_dir="/tmp/grpo")

The dataset rows are TRL's conversational VLM form, the user turn the judge's own message builder writes (image,
then question) so the policy sees the tokens `loops.evaluate_policy` and its training gave it, plus `image`,
`answer` (the right answer, `loops.truth`: the reference for `reference_column="answer"`) and `id`. Each reward
function is wrapped (`with_oracle_log`) to log the oracle's answer score of the same completions beside it
(`oracle/train_score`, `oracle/train_all_right` in the trainer's log history), so a judge reward that rises
without the truth shows during training. `oracle_reward(items)` is the exact reward: the share of the asked
facts an answer gets right (`oracle.answer_score`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Callable, Sequence

from . import oracle


@dataclasses.dataclass
class PolicyGRPOConfig:
    num_generations: int = 8  # answers per question: the group
    batch_size: int = 16  # answers per optimisation step, a multiple of num_generations
    lr: float = 1e-4
    beta: float = 0.04  # KL to the starting policy (0: no reference model)
    epsilon: float = 0.2  # the ratio's clip range
    temperature: float = 0.7  # sampling temperature: the DPO loop's construction and the evaluation's
    max_completion_length: int = 12  # as `loops.evaluate_policy`'s max_new_tokens
    loss_type: str = "grpo"  # TRL's loss: grpo (per-sequence mean), dapo, dr_grpo, ...
    logging_steps: int = 5


def grpo_steps(n_questions: int, cfg: PolicyGRPOConfig) -> int:
    """Optimisation steps for one pass over `n_questions` (each answered `num_generations` times)."""
    return math.ceil(n_questions * cfg.num_generations / cfg.batch_size)


def grpo_dataset(items: Sequence[dict]):
    """A `datasets.Dataset` of the questions (`loops.qa_items`) in TRL's conversational VLM form."""
    from datasets import Dataset

    from ..backends.base import ChatInput
    from ..train.collate import prompt_messages
    from .loops import truth

    return Dataset.from_dict({"prompt": [prompt_messages(ChatInput([it["image"], it["question"]])) for it in items],
                              "image": [it["image"] for it in items], "answer": [truth(it) for it in items],
                              "id": [it["id"] for it in items]})


def _scores(items_by_id: dict, completions, ids) -> list[float]:
    from ..rewards.adapters import trl_text

    return [oracle.answer_score(items_by_id[i]["question"], trl_text(c), items_by_id[i]["scene"])
            for c, i in zip(completions, ids)]


def oracle_reward(items: Sequence[dict]) -> Callable:
    """The exact reward: the share of the asked facts each answer gets right (1.0: wholly right)."""
    by_id = {it["id"]: it for it in items}

    def oracle_score(prompts, completions, id, **kwargs) -> list[float]:  # noqa: A002 (TRL passes columns by name)
        return _scores(by_id, completions, id)

    return oracle_score


def with_oracle_log(fn: Callable, items: Sequence[dict]) -> Callable:
    """`fn` (a sync TRL reward function) that also logs the oracle's mean answer score and wholly-right share of
    the completions it rewards, through TRL's `log_metric`."""
    by_id = {it["id"]: it for it in items}

    @functools.wraps(fn)
    def reward(prompts, completions, **kwargs):
        out = fn(prompts, completions, **kwargs)
        log = kwargs.get("log_metric")
        if log is not None:
            s = _scores(by_id, completions, kwargs["id"])
            log("oracle/train_score", sum(s) / len(s))
            log("oracle/train_all_right", sum(v == 1.0 for v in s) / len(s))
        return out

    return reward


def grpo_policy(base: str | Path, items: Sequence[dict], reward_funcs: Sequence[Callable], cfg: PolicyGRPOConfig, *,
                seed: int, out_dir: str | Path, reward_weights: Sequence[float] | None = None):
    """GRPO (TRL's `GRPOTrainer` on the CPU, float32) of the policy saved at `base` for one pass over `items`, with
    the KL reference loaded from `base` too. Returns (trained model in eval mode, processor, TRL log history)."""
    import torch
    from transformers import AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    processor = AutoProcessor.from_pretrained(base)
    args = GRPOConfig(output_dir=str(out_dir), per_device_train_batch_size=cfg.batch_size,
                      num_generations=cfg.num_generations, max_completion_length=cfg.max_completion_length,
                      temperature=cfg.temperature, top_k=0, learning_rate=cfg.lr, lr_scheduler_type="constant",
                      warmup_steps=0, beta=cfg.beta, epsilon=cfg.epsilon, loss_type=cfg.loss_type,
                      max_steps=grpo_steps(len(items), cfg), logging_steps=cfg.logging_steps, seed=seed,
                      save_strategy="no", report_to=[], use_cpu=True, bf16=False, disable_tqdm=True,
                      activation_checkpointing=False,
                      model_init_kwargs={"dtype": torch.float32},
                      reward_weights=list(reward_weights) if reward_weights is not None else None)
    trainer = GRPOTrainer(model=str(base), reward_funcs=[with_oracle_log(f, items) for f in reward_funcs], args=args,
                          train_dataset=grpo_dataset(items), processing_class=processor)
    trainer.train()
    model = trainer.model.eval()
    return model, processor, trainer.state.log_history


__all__ = ["PolicyGRPOConfig", "grpo_dataset", "grpo_policy", "grpo_steps", "oracle_reward", "with_oracle_log"]
