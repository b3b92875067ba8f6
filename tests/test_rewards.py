"""Group rewards on hand-made verdicts (scripted judges): win-rate arithmetic with ties, unparsed orders and
pairs, both orders, probabilities; Bradley-Terry and point modes; per-prompt grouping under shuffled batches."""

from __future__ import annotations

import math
import random
import re

import numpy as np
import pytest
from PIL import Image

from unireward.backends.scripted import ScriptedBackend
from unireward.judge import RewardModel
from unireward.rewards import GroupRequest, group_rows, resolve_task
from unireward.tasks import get_task

PAIR = get_task("image-und/pair")
IMG = Image.new("RGB", (8, 8))


def _answers(x) -> tuple[str, str]:
    text = "".join(p for p in x.parts if isinstance(p, str))
    a, b = re.findall(r"Answer \d: (\S+)", text)
    return a, b


def _say(w) -> str:
    return PAIR.answer.prefix + PAIR.answer.verdict(w)


class CountingBackend(ScriptedBackend):
    """Counts backend calls (batches), not items."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.batches = 0

    def generate(self, inputs, *a, **k):
        self.batches += 1
        return super().generate(inputs, *a, **k)

    def choice_probs(self, inputs, prefix, choices):
        self.batches += 1
        return super().choice_probs(inputs, prefix, choices)


def test_win_rate_ties_unparsed_and_both_orders_by_hand():
    # (q0, q1): q1 wins in both orders; (q0, q2): a tie in both; (q1, q2): one order unparsed, q1 wins in the
    # other; every pair with q3 unparsed in both orders.
    def respond(x):
        a, b = _answers(x)
        pair = {a, b}
        if "q3" in pair or (pair == {"q1", "q2"} and a == "q2"):
            return "I cannot decide."
        if pair == {"q0", "q2"}:
            return _say("tie")
        return _say(1 if a == "q1" else 2)

    rm = RewardModel(ScriptedBackend(respond))
    g = rm.group_reward("Which?", ["q0", "q1", "q2", "q3"], task="image-und/pair", media=IMG)
    assert g.rewards[:3] == pytest.approx([0.25, 1.0, 0.25])
    assert g.rewards[3] is None  # no parsed pair: no reward, never a default number
    assert g.pairs == 6 and g.unparsed == 3 and g.unparsed_orders == 7
    assert g.order_agreement == 1.0  # (q0, q1) and (q0, q2) both judged in two orders, and agreed
    assert [d["pairs"] for d in g.details] == [2, 2, 2, 0]
    assert rm.backend.calls == 12  # 6 pairs x 2 orders


def test_position_bias_cancels_with_both_orders_and_not_without():
    rm = RewardModel(ScriptedBackend(lambda x: _say(1)))  # always prefers whatever is shown first
    g = rm.group_reward("Which?", ["q0", "q1", "q2"], task="image-und/pair", media=IMG)
    assert g.rewards == pytest.approx([0.5, 0.5, 0.5]) and g.order_agreement == 0.0
    one = rm.group_reward("Which?", ["q0", "q1", "q2"], task="image-und/pair", media=IMG, both_orders=False)
    assert sorted(one.rewards) != [0.5, 0.5, 0.5] and one.order_agreement is None
    assert sum(one.rewards) == pytest.approx(1.5)  # each pair hands out one point


def test_win_rate_from_probabilities_averages_the_orders():
    def probs(x, prefix, choices):  # P(first) = 0.6 + 0.1 * (k_first - k_second) - a first-position bias
        a, b = (int(v[1:]) for v in _answers(x))
        p1 = 0.6 + 0.1 * (a - b)
        return [p1 * 0.8, (1 - p1) * 0.8, 0.2]

    rm = RewardModel(ScriptedBackend(lambda x: "", probs=probs))
    g = rm.group_reward("Which?", ["q0", "q1", "q2"], task="image-und/pair", media=IMG)

    def p_first(a, b):
        p1 = 0.6 + 0.1 * (a - b)
        return 0.8 * p1 + 0.5 * 0.2

    def s(i, j):  # i's score for the pair, two orders averaged
        return (p_first(i, j) + 1 - p_first(j, i)) / 2

    expected = [(s(k, m) + s(k, n)) / 2 for k, m, n in ((0, 1, 2), (1, 0, 2), (2, 0, 1))]
    assert g.rewards == pytest.approx(expected)
    assert sum(g.rewards) == pytest.approx(1.5)


def test_bradley_terry_and_point_modes():
    def probs(x, prefix, choices):
        if len(choices) == 10:  # the point task: the score k + 1 for answer q<k>, with certainty
            (k,) = re.findall(r"Answer: q(\d)", "".join(p for p in x.parts if isinstance(p, str)))
            return [1.0 if v == str(int(k) + 1) else 0.0 for v in choices]
        a, b = (int(v[1:]) for v in _answers(x))
        p1 = 1 / (1 + math.exp(b - a))
        return [p1, 1 - p1, 0.0]

    rm = RewardModel(ScriptedBackend(lambda x: "", probs=probs))
    cands = ["q2", "q0", "q3", "q1"]
    bt = rm.group_reward("Which?", cands, task="image-und/pair", media=IMG, mode="bradley-terry")
    assert sorted(range(4), key=lambda k: -bt.rewards[k]) == [2, 0, 3, 1]
    assert sum(bt.rewards) == pytest.approx(0.0, abs=1e-9)
    pt = rm.group_reward("Which?", cands, task="image-und/pair", media=IMG, mode="point")  # sibling task
    assert pt.task == "image-und/point" and pt.rewards == pytest.approx([3.0, 1.0, 4.0, 2.0])
    with pytest.raises(ValueError):
        rm.group_reward("Which?", cands, task="image-und/pair", media=IMG, mode="mean")
    assert resolve_task(None, "point").name == "image-gen/point"


def test_groups_are_formed_per_prompt_whatever_the_batch_order():
    # the judge prefers the answer closest to the number in the prompt, so a group mixing prompts would differ
    def probs(x, prefix, choices):
        text = "".join(p for p in x.parts if isinstance(p, str))
        target = int(re.search(r"Question: near (\d+)", text).group(1))
        a, b = (int(v[1:]) for v in _answers(x))
        p1 = 1 / (1 + math.exp(abs(a - target) - abs(b - target)))
        return [p1 * 0.9, (1 - p1) * 0.9, 0.1]

    backend = CountingBackend(lambda x: "", probs=probs)
    rm = RewardModel(backend)
    rows = [(f"near {t}", f"q{k}") for t in (0, 5, 9) for k in range(4)]
    reference = {}
    for t in (0, 5, 9):
        g = rm.group_reward(f"near {t}", [f"q{k}" for k in range(4)], task="image-und/pair", media=IMG)
        reference.update({(f"near {t}", f"q{k}"): r for k, r in enumerate(g.rewards)})
    for seed in range(3):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        groups = group_rows([p for p, _ in shuffled])
        reqs = [GroupRequest(shuffled[idx[0]][0], [shuffled[i][1] for i in idx], IMG) for idx in groups]
        backend.batches = 0
        results = rm.group_reward_batch(reqs, task="image-und/pair")
        assert backend.batches == 1  # all pairs of all groups in one batched call
        got = {shuffled[i]: r for idx, g in zip(groups, results) for i, r in zip(idx, g.rewards)}
        assert got == pytest.approx(reference)


def test_bad_media_fails_only_its_group(tmp_path):
    def respond(x):
        return get_task("image-gen/pair").answer.prefix + get_task("image-gen/pair").answer.verdict(1)

    rm = RewardModel(ScriptedBackend(respond))
    imgs = [Image.new("RGB", (8, 8), (40 * k, 0, 0)) for k in range(3)]
    out = rm.group_reward_batch([GroupRequest("a", imgs), GroupRequest("b", [imgs[0], str(tmp_path / "no.png")])])
    assert out[0].status == "ok" and out[0].rewards == pytest.approx([0.5, 0.5, 0.5])
    assert out[1].status == "error" and "no.png" in out[1].reason and out[1].rewards == [None, None]


def test_a_released_family_judge_renders_its_own_prompts_in_groups():
    fam = get_task("image-gen/pair", family="1.0")
    seen = []

    def respond(x):  # the 1.0 judge: prefers the brighter image, answers in its own words
        seen.append("".join(p for p in x.parts if isinstance(p, str)))
        a, b = (float(np.asarray(im).mean()) for im in x.images)
        return fam.answer.verdict(1 if a > b else 2)

    rm = RewardModel(ScriptedBackend(respond), family="1.0")
    imgs = [Image.new("RGB", (8, 8), (v, v, v)) for v in (10, 200, 90)]
    g = rm.group_reward("a grey square", imgs)
    assert g.rewards == pytest.approx([0.0, 1.0, 0.5]) and g.unparsed == 0
    assert seen and all("Text Caption: [a grey square]" in s for s in seen)  # the family's template, not ours


def test_a_reference_gives_an_absolute_measure_beside_the_win_rates():
    def probs(x, prefix, choices):  # P(first) = 0.5 + 0.1 * (k_first - k_second), no ties
        a, b = (int(v[1:]) for v in _answers(x))
        p1 = 0.5 + 0.1 * (a - b)
        return [p1, 1 - p1, 0.0]

    rm = RewardModel(ScriptedBackend(lambda x: "", probs=probs))
    plain = rm.group_reward("Which?", ["q1", "q2", "q4"], task="image-und/pair", media=IMG)
    backend_calls = rm.backend.calls
    g = rm.group_reward_batch([GroupRequest("Which?", ["q1", "q2", "q4"], IMG, reference="q2")],
                              task="image-und/pair")[0]
    assert g.rewards == pytest.approx(plain.rewards)  # the reference never enters the win rates
    assert [d["vs_reference"] for d in g.details] == pytest.approx([0.4, 0.5, 0.7])
    assert g.vs_reference == pytest.approx((0.4 + 0.5 + 0.7) / 3)
    assert rm.backend.calls - backend_calls == 6 + 6  # 3 pairs + 3 against the reference, both orders
    assert plain.vs_reference is None and "vs_reference" not in plain.details[0]
