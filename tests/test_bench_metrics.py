"""Benchmark metrics and the reference swap sequence, against hand-computed cases."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from unireward.bench import metrics as M
from unireward.bench.loaders import mmrb_group, vlrb_group, vlrb_prefix
from unireward.bench.protocols import pair_record, reference_swaps, unswap
from unireward.results import PairResult


def test_tau_and_diff_by_hand():
    gold = [1, 2, "tie", "tie", 1, 2]
    pred = [1, 1, "tie", 1, None, 2]
    # correct: items 0, 2, 5 -> tau 3/6; non-tie gold: 0, 1, 4, 5 -> correct 0, 5 -> diff 2/4
    assert M.tau_diff(gold, pred) == {"tau": 0.5, "diff": 0.5}
    assert M.tau_diff([], []) == {"tau": None, "diff": None}
    assert M.tau_diff(["tie"], [None]) == {"tau": 0.0, "diff": None}  # an unparsed output never counts as a tie


def test_videogen_without_ties_counts_zero_margin_wrong():
    h = [1, -1, 1, 0, -1]
    m = [0.3, -0.2, 0.0, 0.9, 0.1]
    # decisive items 0, 1, 2, 4: right 0 and 1; m = 0 (item 2) is wrong -> 2 / 4
    assert M.accuracy_without_ties(h, m) == 0.5
    assert M.accuracy_without_ties([0, 0], [1.0, -1.0]) is None


def test_videogen_with_ties_by_hand():
    h = [1, -1, 0, 0, 1]
    m = [0.5, 0.05, 0.1, -0.02, 0.3]
    # thresholds {0.02, 0.05, 0.1, 0.3, 0.5}:
    #  e=0.02: C = items 0, 4 (|m| > e, right) = 2; T = item 3 -> 3/5
    #  e=0.05: C = 2; T = 1 -> 3/5          e=0.1: C = 2; T = items 2, 3 -> 4/5
    #  e=0.3:  C = item 0 -> 1; T = 2 -> 3/5   e=0.5: C = 0; T = 2 -> 2/5
    acc, e = M.accuracy_with_ties(h, m)
    assert acc == pytest.approx(0.8) and e == pytest.approx(0.1)
    assert M.accuracy_with_ties([], []) == (None, None)


def _brute_with_ties(h, m):
    best = -1.0
    for e in sorted({abs(x) for x in m}):
        c = sum(1 for hi, mi in zip(h, m) if hi != 0 and abs(mi) > e and hi * mi > 0)
        t = sum(1 for hi, mi in zip(h, m) if hi == 0 and abs(mi) <= e)
        best = max(best, (c + t) / len(h))
    return best


def _published_with_ties(h, m):
    """The benchmark's own incremental algorithm (calc_accuracy_with_ties), restated for the check."""
    def stats(eps):
        c = d = th = tm = thm = 0
        for hi, mi in zip(h, m):
            if hi == 0 and abs(mi) <= eps:
                thm += 1
            elif hi == 0:
                th += 1
            elif abs(mi) <= eps:
                tm += 1
            elif hi * mi > 0:
                c += 1
            else:
                d += 1
        return c, thm
    return max((sum(stats(abs(mi))) / len(h)) for mi in m)


def test_videogen_with_ties_matches_brute_force_and_published_definition():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(1, 25))
        h = list(rng.integers(-1, 2, n))
        m = list(np.round(rng.normal(0, 1, n), 1))  # rounding makes repeated |m| values
        acc, e = M.accuracy_with_ties(h, m)
        assert acc == pytest.approx(_brute_with_ties(h, m))
        assert acc == pytest.approx(_published_with_ties(h, m))
        assert e in {abs(x) for x in m}


def test_human_sign():
    assert [M.human_sign(x) for x in (1, 2, "tie")] == [1, -1, 0]


def test_vlrb_grouping_official_and_unifiedreward():
    ids = {"RLAIF-V-Dataset_1": ("hallucination", "hallucination"), "RLHF-V_2": ("hallucination", "hallucination"),
           "hallucination_pair-3": ("hallucination", "general"), "mathverse_4": ("reasoning", "reasoning"),
           "mmmu-pro_5": ("reasoning", "reasoning"), "wildvision-battle_6": ("general", "general"),
           "vlfeedback_7": ("general", "general"), "plain": ("general", "general")}
    for iid, (official, ur) in ids.items():
        assert (vlrb_group(iid, "official"), vlrb_group(iid, "unifiedreward")) == (official, ur), iid
    assert vlrb_prefix("a-b_c") == "a" and vlrb_prefix("a_b-c") == "a" and vlrb_prefix("abc") == "abc"


def test_vlrb_overall_and_macro_by_hand():
    groups = ["general", "general", "hallucination", "hallucination", "hallucination", "reasoning"]
    correct = [True, False, True, True, False, False]
    # overall 3/6; groups 1/2, 2/3, 0/1 -> macro (0.5 + 0.6667 + 0) / 3
    out = M.overall_and_macro(groups, correct, ["general", "hallucination", "reasoning"])
    assert out["overall"] == 0.5
    assert out["macro"] == pytest.approx((0.5 + 2 / 3 + 0.0) / 3)
    per = M.group_accuracy(groups, correct, ["general", "hallucination", "reasoning"])
    assert per["hallucination"] == {"n": 3, "correct": 2, "accuracy": pytest.approx(2 / 3)}


def test_spearman_by_hand_and_against_scipy():
    # ranks x = 1..5, y = [2, 1, 4, 3, 5]: d^2 sum = 1+1+1+1+0 = 4 -> 1 - 6*4/(5*24) = 0.8
    assert M.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    assert M.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert M.spearman([1], [1]) is None and M.spearman([1, 1, 1], [1, 2, 3]) is None
    from scipy.stats import spearmanr

    x, y = [1, 2, 2, 3, 5, 5, 5], [1, 3, 2, 2, 4, 5, 4]  # with ties: average ranks
    assert M.spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)


def test_exact_match_rounds_half_up_and_counts_unparsed_wrong():
    assert M.exact_match([3.0, 2.5, None, 7.4], [3, 3, 5, 7]) == 0.75


def test_calibration_curve():
    out = M.calibration_curve([0.05, 0.15, 0.95, 0.9], [False, True, True, True], bins=10)
    assert out["count"] == [1, 1, 2] and out["frequency"] == [0.0, 1.0, 1.0]
    assert out["ece"] == pytest.approx((0.05 + 0.85 + 2 * 0.075) / 4)


def test_mmrb_group_split_as_published():
    assert mmrb_group("safety", "pairs_1") == "safety/bias"
    assert mmrb_group("safety", "hateful_2") == "safety/toxicity"
    assert mmrb_group("reasoning", "mathvista_3") == "reasoning/math"
    assert mmrb_group("reasoning", "EMMA-Coding_4") == "reasoning/coding"
    assert mmrb_group("knowledge", "x") == "knowledge"


def test_reference_swaps_follow_the_published_rule():
    # VL-RewardBench: random.seed(0); per item in order, keep the order iff random.random() < 0.5
    random.seed(0)
    expected = [not (random.random() < 0.5) for _ in range(50)]
    assert reference_swaps(50, seed=0, rule="ge") == expected
    assert reference_swaps(50, seed=0, rule="ge")[:8] == [True, True, False, False, True, False, True, False]
    # GenAI-Bench: random.choices([True, False])[0] is the swap decision (seeded here)
    random.seed(3)
    expected = [random.choices([True, False])[0] for _ in range(50)]
    assert reference_swaps(50, seed=3, rule="lt") == expected
    assert reference_swaps(5, rule=None) == [False] * 5
    assert reference_swaps(10, 0, "ge")[:4] == reference_swaps(4, 0, "ge")  # a prefix never changes


def test_pair_record_maps_back_to_dataset_order():
    r = PairResult(task="image-gen/pair", winner=1, probs={"1": 0.7, "2": 0.2, "tie": 0.1}, raw=["x"])
    rec = pair_record(r, swapped=True)
    assert rec["winner"] == 2 and rec["shown_winner"] == 1
    assert rec["probs"] == {"1": 0.2, "2": 0.7, "tie": 0.1} and rec["margin"] == pytest.approx(-0.5)
    assert pair_record(r, swapped=False)["margin"] == pytest.approx(0.5)
    assert [unswap(w) for w in (1, 2, "tie", None)] == [2, 1, "tie", None]


@pytest.mark.parametrize("n", [0, 1, 7])
def test_metrics_on_degenerate_sizes(n):
    h = list(itertools.islice(itertools.cycle([1, -1, 0]), n))
    m = [0.0] * n
    acc, _ = M.accuracy_with_ties(h, m)
    assert acc is None if n == 0 else acc == pytest.approx(h.count(0) / n)


def test_point_stats_reports_argmax_spearman_beside_expected_scores():
    """Gold on two levels; expected scores order the levels but break ties inside them against the gold order
    (what a judge's near-equal probabilities do): the argmax Spearman keeps the levels' perfect order."""
    from unireward.bench.report import point_stats

    rows = [(1, 1, 1.30), (1, 1, 1.10), (1, 1, 1.20), (5, 5, 4.80), (5, 5, 4.90), (5, 5, 4.70)]
    recs = [{"score": s, "expected_score": e, "gold": g, "status": "ok"} for g, s, e in rows]
    stats = point_stats(recs)
    assert stats["spearman_argmax"] == pytest.approx(1.0)
    assert stats["spearman"] == pytest.approx(M.spearman([e for _, _, e in rows], [g for g, _, _ in rows]))
    assert stats["spearman"] == pytest.approx(0.878, abs=1e-3)  # below 1: ties in gold, none in the expected scores
    no_probs = point_stats([{"score": s, "gold": g, "status": "ok"} for g, s, _ in rows])
    assert no_probs["spearman_argmax"] is None and no_probs["spearman"] == pytest.approx(1.0)


def test_bench_default_out_names_the_model(tmp_path):
    from unireward.bench.runner import BenchConfig, default_out

    judge = tmp_path / "my judge"
    judge.mkdir()
    assert default_out(BenchConfig("sandbox", model=str(judge)), "sandbox") == "runs/bench/sandbox-clean-my-judge"
    hub = BenchConfig("genai-image", model="CodeGoat24/UnifiedReward-2.0-qwen-7b", protocol="reference")
    assert default_out(hub, "genai-image") == "runs/bench/genai-image-reference-CodeGoat24--UnifiedReward-2.0-qwen-7b"
    served = BenchConfig("vlrb", model="http://127.0.0.1:8000/v1", backend="openai", served_model="ur-think")
    assert default_out(served, "vlrb") == "runs/bench/vlrb-clean-ur-think"
    assert default_out(BenchConfig("pairs"), "pairs") == "runs/bench/pairs-clean"
