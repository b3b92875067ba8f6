"""Reward specs: weights, per-reward group normalisation (hand-computed), missing rows, absolute means."""

from __future__ import annotations

import math
import re

import pytest
from PIL import Image

from unireward.backends.scripted import ScriptedBackend
from unireward.judge import RewardModel
from unireward.rewards import RewardSpec, RewardTerm, group_advantages

IMG = Image.new("RGB", (8, 8))


def test_group_advantages_by_hand():
    vals = [1.0, 3.0, None, 10.0, 10.0, 4.0]
    adv = group_advantages(vals, [[0, 1, 2], [3, 4], [5]], eps=0.0 + 1e-12)
    assert adv[:3] == pytest.approx([-1.0, 1.0, 0.0])  # mean 2, std 1; the missing row gets 0
    assert adv[3:] == pytest.approx([0.0, 0.0, 0.0])  # flat groups and single rows carry no signal
    raw = group_advantages(vals, [[0, 1, 2], [3, 4, 5]], normalise=False)
    assert raw == pytest.approx([-1.0, 1.0, 0.0, 2.0, 2.0, -4.0])


def test_spec_weights_normalised_rewards_and_reports_absolute_means():
    def probs(x, prefix, choices):  # prefers the longer answer, certainly
        text = "".join(p for p in x.parts if isinstance(p, str))
        a, b = re.findall(r"Answer \d: (\S+)", text)
        return [1.0, 0.0, 0.0] if len(a) > len(b) else [0.0, 1.0, 0.0]

    rm = RewardModel(ScriptedBackend(lambda x: "", probs=probs))
    prompts = ["p", "q", "p", "q", "p", "q"]
    cands = ["aaa", "b", "a", "bb", "aa", "bbb"]

    def length(ps, cs, meta):
        return [float(len(c)) if c != "bb" else None for c in cs]

    spec = RewardSpec.from_dict({"judge": {"weight": 0.5, "mode": "win-rate", "task": "image-und/pair"},
                                 "length": 2.0}, fns={"length": length})
    out = spec.evaluate(rm, prompts, cands, media=[IMG] * 6, keys=prompts)
    assert out.groups == [[0, 2, 4], [1, 3, 5]]
    assert out.rewards["judge"] == pytest.approx([1.0, 0.0, 0.0, 0.5, 0.5, 1.0])
    sj, s = math.sqrt(1 / 6), math.sqrt(2 / 3)  # the stds of (1, 0, 0.5) and of (3, 1, 2)
    judge_adv = [0.5 / sj, -0.5 / sj, -0.5 / sj, 0.0, 0.0, 0.5 / sj]
    # length: group p (3, 1, 2) -> (1, -1, 0) / s; group q (1, None, 3) -> (-1, 0, 1)
    len_adv = [1 / s, -1, -1 / s, 0.0, 0.0, 1]
    expected = [0.5 * j + 2.0 * n for j, n in zip(judge_adv, len_adv)]
    assert out.advantages == pytest.approx(expected, rel=1e-3)
    assert out.normalised["length"] == pytest.approx(len_adv, rel=1e-3)
    assert out.stats["judge"]["mean"] == pytest.approx(0.5)  # a win rate's mean: 0.5 by construction
    assert out.stats["length"]["mean"] == pytest.approx(2.0) and out.stats["length"]["missing"] == 1
    assert out.combined[3] is None and out.combined[0] == pytest.approx(0.5 * 1.0 + 2.0 * 3)
    with pytest.raises(ValueError):
        RewardTerm("x", mode="median")


def test_spec_refuses_careless_definitions_and_takes_array_media():
    import numpy as np

    def length(ps, cs, meta):
        return [float(len(c)) for c in cs]

    with pytest.raises(ValueError, match="'lenght' has no function in fns"):
        RewardSpec.from_dict({"judge": 1.0, "lenght": 1.0}, fns={})
    with pytest.raises(ValueError, match=r"fns names reward\(s\) \['lenght'\]"):
        RewardSpec.from_dict({"judge": 1.0, "length": 1.0}, fns={"lenght": length, "length": length})
    with pytest.raises(ValueError, match="weight must be a finite number"):
        RewardSpec.from_dict({"length": float("nan")}, fns={"length": length})
    with pytest.raises(ValueError, match="weight must be a finite number"):
        RewardTerm("length", weight="0.5", fn=length)
    rm = RewardModel(ScriptedBackend(lambda x: "", probs=lambda x, p, c: [0.6, 0.3, 0.1]))
    spec = RewardSpec.from_dict({"judge": {"mode": "win-rate", "task": "image-und/pair"}, "length": 1.0},
                                fns={"length": length})
    media = np.zeros((4, 8, 8, 3), np.uint8)  # one image per row, as an array
    out = spec.evaluate(rm, ["p"] * 4, ["a", "bb", "ccc", "dddd"], media=media)
    assert out.groups == [[0, 1, 2, 3]] and all(math.isfinite(a) for a in out.advantages)
    with pytest.raises(ValueError, match="3 media for 4 prompts"):
        spec.evaluate(rm, ["p"] * 4, ["a", "bb", "ccc", "dddd"], media=media[:3])
