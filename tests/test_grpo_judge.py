"""GRPO for judges (`unireward train grpo-judge`): the accuracy and format rewards on hand-made completions, the
presets, the refusal of video tasks, and a short run on the shipped sandbox judge that moves its parameters with
a finite loss, logs the rewards and resumes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from unireward.config import PRESETS, load_config
from unireward.data.schema import write_samples
from unireward.errors import ConfigError
from unireward.tasks import get_task
from unireward.judging.render import render
from unireward.train.grpo_judge import (GRPOJudgeConfig, accuracy_reward, build_grpo_dataset, format_reward,
                                        judge_reward_funcs, run_grpo_judge)

ROOT = Path(__file__).resolve().parents[1]
JUDGE = ROOT / "src" / "unireward" / "sandbox" / "judge"
CHECKLIST = "colour red: Image 1 red yes, Image 2 blue no\nTally: Image 1 1, Image 2 0"


def test_our_format_rewards_right_wrong_unparsed_and_bad_format():
    task = get_task("image-gen/pair")
    right = task.target(1, rationale=CHECKLIST)  # checklist, then "Final Judgment: Image 1 is better ..."
    wrong = task.target(2, rationale=CHECKLIST)
    tie = task.target("tie", rationale=CHECKLIST)
    no_reasoning = task.target(1)  # the verdict alone
    trailing = right + "\nand some more words"  # the verdict is not the last line
    assert [accuracy_reward(task, t, 1) for t in (right, wrong, tie, "gibberish")] == [1.0, 0.0, 0.0, 0.0]
    assert accuracy_reward(task, tie, "tie") == 1.0  # ties are answers in our format
    assert [format_reward(task, t) for t in (right, wrong, no_reasoning, trailing, "gibberish")] == \
        [1.0, 1.0, 0.0, 0.0, 0.0]
    point = get_task("image-gen/point")
    scored = point.target(4, rationale="colour red: red yes")
    assert accuracy_reward(point, scored, 4) == 1.0 and accuracy_reward(point, scored, 5) == 0.0
    assert accuracy_reward(point, scored, 5, point_tolerance=1.0) == 1.0
    assert format_reward(point, scored) == 1.0 and format_reward(point, point.target(4)) == 0.0


def test_think_format_needs_think_then_answer_and_nothing_else():
    task = get_task("image-gen/pair", family="think")
    good = "<think>Image 1 shows the red cube; Image 2 does not.</think>\n<answer>Image 1 is better</answer>"
    assert accuracy_reward(task, good, 1) == 1.0 and accuracy_reward(task, good, 2) == 0.0
    assert accuracy_reward(task, good, "tie") == 0.0  # Think has no tie answer
    assert format_reward(task, good) == 1.0
    for bad in ("<answer>Image 1 is better</answer>",  # no reasoning
                "<think></think><answer>Image 1 is better</answer>",  # empty reasoning
                good + " and then more",  # text after the answer
                "<think>x</think>Image 1 is better"):  # no answer tags
        assert format_reward(task, bad) == 0.0, bad


def test_reward_functions_take_trl_columns():
    accuracy, fmt = judge_reward_funcs()
    task = get_task("image-gen/pair")
    completions = [[{"role": "assistant", "content": task.target(w, rationale=CHECKLIST)}] for w in (1, 2)] + \
        [[{"role": "assistant", "content": "unparsed"}]]
    columns = {"task": ["image-gen/pair"] * 3, "label": [json.dumps(1), json.dumps(1), json.dumps("tie")]}
    assert accuracy(completions=completions, prompts=None, **columns) == [1.0, 0.0, 0.0]
    assert fmt(completions=completions, prompts=None, **columns) == [1.0, 1.0, 0.0]
    assert (accuracy.__name__, fmt.__name__) == ("accuracy", "format")  # TRL logs rewards/<name>


def test_presets_load_at_the_authors_settings():
    presets = {p.stem: load_config(GRPOJudgeConfig, p) for p in sorted((PRESETS / "grpo_judge").glob("*.yaml"))}
    assert set(presets) == {"sandbox", "qwen2_5_vl_7b", "qwen3_vl_8b"}
    assert presets["sandbox"].model == "src/unireward/sandbox/judge"
    for name, variant in (("qwen2_5_vl_7b", "qwen2.5"), ("qwen3_vl_8b", "qwen3")):
        c = presets[name]
        assert (c.family, c.variant, c.lr, c.num_generations, c.beta) == ("think", variant, 1e-6, 8, 0.04)
        assert c.use_vllm and c.bf16
        assert "accelerate launch --config_file src/unireward/configs/accelerate/zero3.yaml" in \
            (PRESETS / "grpo_judge" / f"{name}.yaml").read_text()
    with pytest.raises(ConfigError, match="num_generations"):
        GRPOJudgeConfig(num_generations=1)
    with pytest.raises(ConfigError, match="vision_lr"):
        GRPOJudgeConfig(vision_lr=1e-5)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    from unireward.sandbox.data import build_samples, write_media

    root = tmp_path_factory.mktemp("grpo-data")
    out = {}
    for task in ("image-gen/pair", "video-gen/pair"):
        samples, jobs = build_samples(task, 4, "train", seed=5, image_size=56, rationale=True)
        write_media(root, jobs)
        write_samples(root / f"{task.split('/')[0]}.jsonl", samples)
        out[task] = root / f"{task.split('/')[0]}.jsonl"
    return out


def test_video_tasks_are_refused_with_a_clear_error(pairs):
    from unireward.train.sft import read_mixture

    with pytest.raises(ConfigError, match="video-gen/pair.*videos"):
        build_grpo_dataset(read_mixture([str(pairs["video-gen/pair"])]), GRPOJudgeConfig())


def test_a_family_that_sends_frames_trains_on_videos_exactly_as_the_judge_renders_them(pairs):
    from unireward.data.schema import read_samples
    from unireward.judge import RewardModel
    from unireward.train.sft import read_mixture

    config = GRPOJudgeConfig(family="think", variant="qwen3")
    data = build_grpo_dataset(read_mixture([str(pairs["video-gen/pair"])]), config)
    sample = next(iter(read_samples(pairs["video-gen/pair"])))
    rm = RewardModel(backend=None, family="think", variant="qwen3")  # rendering only: no backend call
    task = get_task("video-gen/pair", family="think", variant="qwen3")
    chat = render(task, rm.prepare(task, sample.prompt, sample.media_paths(pairs["video-gen/pair"].parent),
                                        None), swap=False)
    row = data[0]
    assert len(row["images"]) == 2 * task.video_frames and not chat.videos
    assert row["prompt"] == chat.messages()
    assert [im.tobytes() for im in row["images"]] == [im.tobytes() for im in chat.images]


def test_the_prompt_is_the_judges_own_message_with_its_images(pairs):
    from unireward.data.schema import read_samples
    from unireward.train.collate import sample_chat, training_spec
    from unireward.train.sft import read_mixture

    data = build_grpo_dataset(read_mixture([str(pairs["image-gen/pair"])]), GRPOJudgeConfig())
    row = data[0]
    sample = next(iter(read_samples(pairs["image-gen/pair"])))
    chat = sample_chat(sample, pairs["image-gen/pair"].parent, training_spec(str(JUDGE)))
    assert row["prompt"] == chat.messages()
    assert [im.tobytes() for im in row["images"]] == [im.tobytes() for im in chat.images]
    assert (row["task"], json.loads(row["label"])) == ("image-gen/pair", sample.label)


def test_two_steps_move_the_parameters_with_a_finite_loss_log_rewards_and_resume(pairs, tmp_path):
    import torch
    from safetensors.torch import load_file

    out = tmp_path / "grpo"
    # temperature 1.5: the judge's checklists vary within a group, so the rewards (and advantages) do too
    config = GRPOJudgeConfig(model=str(JUDGE), data=[str(pairs["image-gen/pair"])], output_dir=str(out), lr=1e-3,
                             max_steps=2, batch_size=4, num_generations=4, temperature=1.5,
                             max_completion_length=96, logging_steps=1, save_steps=1, num_threads=1, progress=False)
    result = run_grpo_judge(config)
    assert result.global_step == 2 and result.train_loss is not None and math.isfinite(result.train_loss)
    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [r for r in logs if "rewards/accuracy/mean" in r]
    assert len(steps) == 2 and all("rewards/format/mean" in r and math.isfinite(r["loss"]) for r in steps)
    assert any(r["reward_std"] > 0 for r in steps)
    before, after = load_file(str(JUDGE / "model.safetensors")), load_file(str(out / "model.safetensors"))
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(moved) > len(before) // 2
    sidecar = json.loads((out / "unireward.json").read_text())
    assert sidecar["method"] == "generate" and sidecar["family"] == "unireward"
    from dataclasses import replace

    again = run_grpo_judge(replace(config, max_steps=3))
    assert again.resumed_from and again.resumed_from.endswith("checkpoint-2") and again.global_step == 3


def test_the_cli_resolves_both_recipes(capsys):
    import yaml

    from unireward.cli import main

    assert main(["train", "grpo-judge", "--config", str(PRESETS / "grpo_judge/qwen2_5_vl_7b.yaml"),
                 "--print-config", "num_generations=4"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert (resolved["num_generations"], resolved["variant"]) == (4, "qwen2.5")
    assert main(["train", "reject", "--config", str(PRESETS / "reject/sandbox.yaml"), "--print-config",
                 "k=8"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["k"] == 8
