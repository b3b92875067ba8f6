"""The judge core: choice-probability reading, batching, order debiasing, groups, errors, all three families."""

from __future__ import annotations

import math

import pytest

from unireward.backends.choices import plan_choices
from unireward.backends.scripted import ScriptedBackend
from unireward.grouping import bradley_terry, schedule_pairs
from unireward.judge import PairRequest, RewardModel
from unireward.tasks import get_task
from unireward.judging.render import render  # noqa: E402


# -- choice planning -------------------------------------------------------------------------------------------
def test_plan_single_path_for_pair_with_tie():
    plan = plan_choices([[1, 2, 3, 10, 20], [1, 2, 3, 11, 20], [1, 2, 4]], terminator=None)
    assert plan.common == (1, 2)
    assert plan.paths == [(3,)]  # one forward pass
    assert plan.factors[0] == [(0, 0, 3), (0, 1, 10)]
    assert plan.factors[2] == [(0, 0, 4)]


def test_plan_uses_terminator_when_a_choice_prefixes_another():
    plan = plan_choices([[5, 1], [5, 1, 0], [5, 2]], terminator=99)
    assert plan.paths == [(1,)]
    assert (0, 1, 99) in plan.factors[0] and (0, 1, 0) in plan.factors[1]
    with pytest.raises(ValueError):
        plan_choices([[5, 1], [5, 1, 0]], terminator=None)


# -- the transformers backend on tiny models --------------------------------------------------------------------
def test_choice_probs_match_a_direct_forward_pass(tiny_judge, images):
    """P(Image 1)/P(Image 2) must equal the ratio of the next-token probabilities of "1" and "2" after the forced
    prefix "Final Judgment: Image ", computed here independently with the processor and the model."""
    import torch

    rm = tiny_judge
    task = get_task("image-gen/pair")
    res = rm.rank("a red circle", images[0], images[1], task=task)
    assert res.method == "probs" and res.status == "ok"
    assert math.isclose(sum(res.probs.values()), 1.0, rel_tol=1e-6)
    b = rm.backend
    x = render(task, rm.prepare(task, "a red circle", [images[0], images[1]], None), swap=False)
    text = b.prompt_text(x) + "Final Judgment: Image "
    enc = b.processor(text=[text], images=x.images, return_tensors="pt")
    with torch.inference_mode():
        logits = b.model(**enc).logits[0, -1]
    one, two = (b.tokenizer.convert_tokens_to_ids(t) for t in ("1", "2"))
    expected = (logits[one] - logits[two]).item()
    assert math.isclose(math.log(res.probs["1"] / res.probs["2"]), expected, abs_tol=1e-4)


def test_batched_equals_one_at_a_time(tiny_model_dir, images):
    rm = RewardModel.load(tiny_model_dir("qwen2-vl"), dtype=None, batch_size=3)
    reqs = [PairRequest(f"caption {'long ' * i}", images[i], images[(i + 1) % 5]) for i in range(5)]
    batched = rm.rank_batch(reqs)
    single = [rm.rank_batch([r])[0] for r in reqs]
    for a, s in zip(batched, single):
        for k in ("1", "2", "tie"):
            assert math.isclose(a.probs[k], s.probs[k], abs_tol=1e-5)


@pytest.mark.parametrize("family", ["qwen2-vl", "qwen2.5-vl", "qwen3-vl"])
def test_families_rank_and_score_images_and_videos(tiny_model_dir, images, video_file, family):
    from unireward.media import VideoPolicy

    rm = RewardModel.load(tiny_model_dir(family), dtype=None, video_policy=VideoPolicy(num_frames=4))
    r = rm.rank("a red circle", images[0], images[1], both_orders=True)
    assert r.winner in (1, 2, "tie") and r.consistent is not None and len(r.raw) == 2
    s = rm.score("What colour is it?", "Red.", task="image-und/point", media=images[2])
    assert 1 <= s.expected_score <= 10 and s.score in range(1, 11)
    v = rm.rank("a ball moving right", str(video_file), str(video_file), task="video-gen/pair")
    assert v.status == "ok" and v.media_policy["num_frames"] == 4
    p = rm.score("Which way does it move?", "Right.", task="video-und/point", media=str(video_file))
    assert p.status == "ok" and 1 <= p.expected_score <= 10


def test_paths_of_different_lengths_batch_like_one_at_a_time(tiny_judge, images):
    """Choices whose plan needs paths of different lengths put rows with different suffixes in one right-padded
    batch; the probabilities must not depend on the batch."""
    from unireward.backends.base import ChatInput

    b = tiny_judge.backend
    choices = ["red circle", "red square", "blue sky is big", "blue sky is small"]
    assert len({len(p) for p in b._plan("Answer: ", choices).paths}) > 1
    xs = [ChatInput([images[i], "caption " + "long " * i]) for i in range(5)]
    for x, batched in zip(xs, b.choice_probs(xs, "Answer: ", choices)):
        (single,) = b.choice_probs([x], "Answer: ", choices)
        assert math.isclose(sum(batched), 1.0)
        assert all(math.isclose(p, q, abs_tol=1e-5) for p, q in zip(batched, single))


def test_generate_path_returns_text_and_never_defaults(tiny_model_dir, images):
    rm = RewardModel.load(tiny_model_dir("qwen2-vl"), dtype=None, method="generate", max_new_tokens=6)
    r = rm.rank("a red circle", images[0], images[1])
    assert r.method == "generate"
    assert r.winner is None or r.status == "ok"  # random weights: usually unparsed, never a silent default
    if r.winner is None:
        assert r.status == "unparsed" and r.reason


def test_bad_media_fails_only_its_item(tiny_judge, images, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    reqs = [PairRequest("a", images[0], images[1]), PairRequest("b", str(tmp_path / "missing.png"), images[1]),
            PairRequest("c", str(broken), images[1])]
    out = tiny_judge.rank_batch(reqs)
    assert out[0].status == "ok"
    assert out[1].status == "error" and "missing.png" in out[1].reason
    assert out[2].status == "error" and "broken.png" in out[2].reason


def test_prompt_over_the_context_is_an_item_error(tiny_model_dir, images):
    rm = RewardModel.load(tiny_model_dir("qwen2-vl"), dtype=None)
    task = get_task("image-gen/pair")
    short = render(task, rm.prepare(task, "short", [images[0], images[1]], None), swap=False)
    rm.backend.max_length = rm.backend.encode([short])["input_ids"].shape[1] + 20
    out = rm.rank_batch([PairRequest("short", images[0], images[1]), PairRequest("long " * 200, images[0], images[1])])
    assert out[0].status == "ok"
    assert out[1].status == "error" and "context" in out[1].reason


# -- order debiasing and groups (scripted judges) --------------------------------------------------------------
def _first_biased(x):
    return "Final Judgment: Image 1 is better than Image 2."


def test_position_biased_judge_becomes_inconsistent_tie(images):
    rm = RewardModel(ScriptedBackend(_first_biased))
    r = rm.rank("p", images[0], images[1], both_orders=True)
    assert r.winner == "tie" and r.consistent is False and r.method == "generate"
    one = rm.rank("p", images[0], images[1])
    assert one.winner == 1 and one.consistent is None


def test_both_orders_average_probabilities(images):
    # a judge that gives 0.7 to whichever candidate is shown first
    rm = RewardModel(ScriptedBackend(_first_biased, probs=lambda x, prefix, choices: [0.7, 0.2, 0.1]))
    r = rm.rank("p", images[0], images[1], both_orders=True)
    assert math.isclose(r.probs["1"], 0.45) and math.isclose(r.probs["2"], 0.45)
    assert r.consistent is False and math.isclose(r.p_first, 0.5)


def test_unparsed_output_is_explicit(images):
    rm = RewardModel(ScriptedBackend(lambda x: "I cannot decide."))
    r = rm.rank("p", images[0], images[1])
    assert r.winner is None and r.status == "unparsed"
    s = rm.score("p", images[0])
    assert s.score is None and s.status == "unparsed"


def test_rank_group_recovers_a_known_order():
    # candidates are answer texts "q<k>"; the scripted judge prefers the higher k, with probabilities
    import re

    def probs(x, prefix, choices):
        text = "".join(p for p in x.parts if isinstance(p, str))
        a, b = (int(v) for v in re.findall(r"Answer \d: q(\d+)", text))
        p1 = 1 / (1 + math.exp(b - a))
        return [p1 * 0.9, (1 - p1) * 0.9, 0.1]

    from PIL import Image

    rm = RewardModel(ScriptedBackend(lambda x: "", probs=probs))
    cands = [f"q{k}" for k in (3, 0, 5, 1, 4, 2)]
    g = rm.rank_group("Which?", cands, task="image-und/pair", media=Image.new("RGB", (8, 8)))
    assert [cands[i] for i in g.ranking] == ["q5", "q4", "q3", "q2", "q1", "q0"]
    assert g.schedule == "round-robin" and len(g.comparisons) == 15


def test_sparse_schedule_is_connected_and_smaller():
    pairs = schedule_pairs(32, "auto", seed=1)
    assert len(pairs) < 32 * 31 // 2 / 4
    seen, frontier = {0}, [0]
    adj = {i: set() for i in range(32)}
    for i, j in pairs:
        adj[i].add(j)
        adj[j].add(i)
    while frontier:
        for j in adj[frontier.pop()] - seen:
            seen.add(j)
            frontier.append(j)
    assert len(seen) == 32
    assert schedule_pairs(32, "auto", seed=1) == pairs  # seeded


def test_bradley_terry_hand_cases():
    assert bradley_terry(2, [(0, 1, 0.5), (1, 0, 0.5)]) == pytest.approx([0.0, 0.0], abs=1e-6)
    s = bradley_terry(3, [(0, 1, 1.0), (1, 2, 1.0), (0, 2, 1.0)])
    assert s[0] > s[1] > s[2] and all(math.isfinite(v) for v in s)
    # without a prior, 3 wins of 4 between two players gives a strength ratio of 3
    s = bradley_terry(2, [(0, 1, 1.0)] * 3 + [(0, 1, 0.0)], prior=0.0)
    assert math.isclose(math.exp(s[0] - s[1]), 3.0, rel_tol=1e-4)


def test_task_kind_is_checked(tiny_judge, images):
    from unireward.errors import TaskError

    with pytest.raises(TaskError):
        tiny_judge.rank("p", images[0], images[1], task="image-gen/point")
    r = tiny_judge.rank("p", "a", "b", task="image-und/pair")  # no media for an understanding task
    assert r.status == "error" and "needs" in r.reason
