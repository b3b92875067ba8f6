"""The judge-choice options (--family, --variant, --checkpoint, --method, --reasoning) on the judging commands and
on `serve`, which used to load every judge with its defaults."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from unireward.cli import build_parser, main

SHIPPED = str(Path(__file__).resolve().parents[1] / "src" / "unireward" / "sandbox" / "judge")


def test_serve_and_rank_parse_the_same_judge_choice():
    from unireward.commands.judge import judge_choice

    parser = build_parser()
    serve = parser.parse_args(["serve", "--model", "http://gpu:8000/v1", "--backend", "openai", "--served-model", "j",
                               "--checkpoint", "CodeGoat24/UnifiedReward-2.0-qwen3vl-8b", "--no-reasoning"])
    assert judge_choice(serve) == {"family": None, "variant": None, "method": None, "reasoning": False,
                                   "checkpoint": "CodeGoat24/UnifiedReward-2.0-qwen3vl-8b"}
    rank = parser.parse_args(["rank", "--model", "m", "--family", "think", "--variant", "qwen2.5", "--reasoning",
                              "a.png", "b.png"])
    assert judge_choice(rank) == {"family": "think", "variant": "qwen2.5", "checkpoint": None, "method": None,
                                  "reasoning": True}
    assert judge_choice(parser.parse_args(["score", "--model", "m", "x.png"]))["reasoning"] is None


def test_no_reasoning_reads_the_shipped_judge_right_after_the_prompt(tmp_path, capsys):
    rng = np.random.default_rng(0)
    paths = []
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    common = ["rank", "--model", SHIPPED, "--device", "cpu", "--dtype", "float32", "--no-progress",
              "--prompt", "a red cube", "--max-new-tokens", "96", *paths]
    assert main(common + ["--method", "probs"]) == 0
    default = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(common + ["--method", "probs", "--no-reasoning"]) == 0
    direct = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert default["method"] == "think+probs"  # its unireward.json: the checklist first
    assert direct["method"] == "probs" and direct["status"] == "ok"
    assert abs(sum(direct["probs"].values()) - 1) < 1e-5
