"""The sandbox oracle as a judge backend: exact verdicts and scores for all eight tasks from pixels and text."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from unireward.judge import RewardModel
from unireward.sandbox.data import perturb
from unireward.sandbox.oracle_judge import OracleBackend
from unireward.sandbox.world import answer, render_image, render_video, sample_scene


@pytest.fixture
def judge():
    return RewardModel(OracleBackend())


def _img(scene, seed=0):
    return Image.fromarray(render_image(scene, 32, seed))


def test_image_generation_pairs_and_points(judge):
    rng = np.random.default_rng(0)
    for _ in range(5):
        s = sample_scene(rng)
        bad = perturb(s, 1, ("colour", "shape", "position"), rng, "heldout")
        r = judge.rank(s.caption(), _img(bad, 1), _img(s, 2), task="image-gen/pair", both_orders=True)
        assert r.winner == 2 and r.consistent and r.probs["2"] > 0.95
        assert judge.rank(s.caption(), _img(s, 1), _img(s, 2), task="image-gen/pair").winner == "tie"
        assert judge.score(s.caption(), _img(s), task="image-gen/point").score == 5
        two = perturb(s, 2, ("colour", "shape", "position"), rng, "heldout")
        assert judge.score(s.caption(), _img(two), task="image-gen/point").expected_score == pytest.approx(2, abs=0.2)


def test_generate_path_writes_the_tasks_answer_text(judge):
    rng = np.random.default_rng(1)
    s = sample_scene(rng)
    bad = perturb(s, 1, ("colour",), rng, "heldout")
    gen = RewardModel(OracleBackend(), method="generate")
    r = gen.rank(s.caption(), _img(s), _img(bad), task="image-gen/pair")
    assert r.winner == 1 and r.method == "generate" and r.raw[0].endswith("Image 1 is better than Image 2.")
    assert gen.score(s.caption(), _img(bad), task="image-gen/point").score == 4


def test_understanding_answers(judge):
    rng = np.random.default_rng(2)
    s = sample_scene(rng)
    right, wrong = answer("colour", s.objects[0].colour, 1), answer("colour", "green" if s.objects[0].colour != "green"
                                                                     else "red", 1)
    r = judge.rank("What colour is the shape?", wrong, right, task="image-und/pair", media=_img(s))
    assert r.winner == 2
    assert judge.score("Describe the image.", answer("describe", s.caption(), 1), task="image-und/point",
                       media=_img(s)).score == 10
    assert judge.score("Where is the shape?", "I do not know", task="image-und/point", media=_img(s)).score == 1


def test_videos(judge):
    rng = np.random.default_rng(3)
    v = sample_scene(rng, video=True)
    smooth, jump = render_video(v, 32, 8, 1), render_video(v.replace(physics="teleport"), 32, 8, 2)
    assert judge.rank(v.caption(), jump, smooth, task="video-gen/pair").winner == 2
    assert judge.score("Which way does it move?", f"It moves {v.motion}.", task="video-und/point",
                       media=smooth).score == 10


def test_non_sandbox_input_is_refused(judge):
    from unireward.errors import BackendError

    with pytest.raises(BackendError, match="sandbox caption"):
        judge.rank("a photo of a cat", _img(sample_scene(np.random.default_rng(0))),
                   _img(sample_scene(np.random.default_rng(1))), task="image-gen/pair")
