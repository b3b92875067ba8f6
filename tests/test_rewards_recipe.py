"""GRPO presets load (and say how to run), and the VLM GRPO recipe trains a tiny policy for a step against a
judge served over HTTP."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from unireward.config import PRESETS, load_config
from unireward.judge import RewardModel
from unireward.rewards.recipe import VLMGRPOConfig, build_trainer
from unireward.sandbox.grpo import SandboxGRPOConfig
from unireward.serve import ServeConfig, ServerThread

ROOT = Path(__file__).resolve().parents[1]


def test_grpo_presets_load_and_say_how_to_run():
    vlm = load_config(VLMGRPOConfig, PRESETS / "grpo/qwen2_5_vl_3b_vllm_judge.yaml")
    assert vlm.judge_kind == "openai" and vlm.num_generations == 8 and vlm.lr == 1e-6 and vlm.beta == 0.04
    assert "-m unireward.rewards.recipe" in (PRESETS / "grpo/qwen2_5_vl_3b_vllm_judge.yaml").read_text()
    sb = load_config(SandboxGRPOConfig, PRESETS / "grpo/sandbox_generator.yaml", ["iterations=3"])
    assert sb.iterations == 3 and sb.group_size == 8 and sb.minibatches == 4 and sb.eta > 0
    assert "benchmarks/sandbox_grpo.py" in (PRESETS / "grpo/sandbox_generator.yaml").read_text()


def test_the_vllm_preset_judges_with_the_served_checkpoints_prompts(monkeypatch):
    """The judge the recipe connects to is run with its checkpoint's own prompt family, not unireward's (no
    request is sent: loading an OpenAI-backend judge does not call the server)."""
    from unireward.rewards import client
    from unireward.rewards.recipe import reward_funcs

    vlm = load_config(VLMGRPOConfig, PRESETS / "grpo/qwen2_5_vl_3b_vllm_judge.yaml")
    made = []
    real = client.connect
    monkeypatch.setattr(client, "connect", lambda *a, **kw: made.append(real(*a, **kw)) or made[-1])
    funcs, weights = reward_funcs(vlm)
    assert len(funcs) == 2 and weights == [1.0, 1.0]
    assert made[0].rm.family == "1.0"


def test_vlm_grpo_recipe_steps_against_a_served_judge(tmp_path, tiny_model_dir, monkeypatch):
    from test_rewards_adapters import LengthJudge

    rows = []
    for k in range(2):
        path = tmp_path / f"img{k}.png"
        Image.fromarray(np.full((32, 32, 3), 60 * k, np.uint8)).save(path)
        rows.append({"question": f"What colour is square {k}?", "image": str(path), "answer": "A grey square."})
    data = tmp_path / "q.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    backend = LengthJudge()
    monkeypatch.setenv("UNIREWARD_API_KEY", "k")
    with ServerThread(RewardModel(backend), ServeConfig(port=0, api_key="k")) as srv:
        cfg = load_config(VLMGRPOConfig, PRESETS / "grpo/qwen2_5_vl_3b_vllm_judge.yaml", [
            f"model={tiny_model_dir('qwen2-vl')}", f"data={data}", f"judge={srv.url}", "judge_kind=unireward",
            "num_generations=4", "batch_size=4", "max_completion_length=8", "steps=1", "bf16=false",
            "gradient_checkpointing=false", "use_cpu=true", f"output_dir={tmp_path / 'out'}", "logging_steps=1",
            "lr=1e-3"])
        trainer = build_trainer(cfg)
        trainer.train()
    log = trainer.state.log_history[0]
    assert math.isfinite(float(log["loss"]))
    assert 1 <= float(log["rewards/judge_point/mean"]) <= 10 and 0 < float(log["rewards/judge_vs_reference/mean"]) < 1
    assert backend.saw_images and all(n == 1 for n in backend.saw_images)
