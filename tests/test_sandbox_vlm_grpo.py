"""GRPO of the sandbox policy VLM with TRL's GRPOTrainer: the dataset renders the prompt the policy is evaluated
with, the oracle reward is the answer score, and two steps on a tiny policy move it and log the oracle beside the
reward."""

from __future__ import annotations

import math

import pytest
import torch

from unireward.sandbox import loops, oracle
from unireward.sandbox.vlm_grpo import PolicyGRPOConfig, grpo_dataset, grpo_policy, grpo_steps, oracle_reward


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    root = tmp_path_factory.mktemp("policy")
    model, processor = loops.build_policy(root / "init", image_size=28, seed=0)
    model.save_pretrained(root / "base")
    processor.save_pretrained(root / "base")
    return root / "base", processor


def test_dataset_prompt_is_the_evaluation_prompt_and_oracle_reward_scores_answers(tiny_policy):
    from unireward.backends.base import ChatInput
    from unireward.train.collate import prompt_messages, prompt_text

    _, processor = tiny_policy
    items = loops.qa_items(4, "train", 0, 28, attributes=("describe", "colour"))
    ds = grpo_dataset(items)
    for it, row in zip(items, ds):
        assert processor.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False) == \
            prompt_text(processor, prompt_messages(ChatInput([it["image"], it["question"]])))
        assert row["answer"] == loops.truth(it) and row["id"] == it["id"]
    fn = oracle_reward(items)
    wrong = loops.loose_answers(items, caption_noise=1.0, seed=0)
    got = fn(prompts=ds["prompt"], completions=[[{"role": "assistant", "content": a["completion"]}] for a in wrong],
             id=ds["id"])
    assert got == [oracle.answer_score(it["question"], a["completion"], it["scene"]) for it, a in zip(items, wrong)]
    assert all(s < 1 for s in got)
    assert fn(prompts=ds["prompt"], completions=ds["answer"], id=ds["id"]) == [1.0] * 4


def test_two_grpo_steps_move_the_policy_and_log_the_oracle(tiny_policy, tmp_path):
    base, _ = tiny_policy
    items = loops.qa_items(2, "train", 0, 28)
    cfg = PolicyGRPOConfig(num_generations=4, batch_size=4, lr=1e-3, max_completion_length=6, logging_steps=1)
    assert grpo_steps(len(items), cfg) == 2

    def length(prompts, completions, **kwargs):  # a scripted reward that varies within every group
        return [float(len(c[0]["content"])) for c in completions]

    before = {n: p.detach().clone() for n, p in loops.load_policy(base)[0].named_parameters()}
    model, _, history = grpo_policy(base, items, [length, oracle_reward(items)], cfg, seed=0, out_dir=tmp_path,
                                    reward_weights=[1.0, 0.0])
    logs = [h for h in history if "loss" in h]
    assert len(logs) == 2 and all(math.isfinite(h["loss"]) for h in logs)
    assert all(h["rewards/length/std"] > 0 for h in logs)
    assert all(0 <= h["oracle/train_score"] <= 1 and 0 <= h["rewards/oracle_score/mean"] <= 1 for h in logs)
    moved = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert moved
