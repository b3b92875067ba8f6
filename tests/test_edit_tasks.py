"""Image-editing tasks: the instruction, the source image (media 0) and the edited candidates (media 1..k)."""

from __future__ import annotations

import math

import pytest

from unireward.backends.scripted import ScriptedBackend
from unireward.errors import TaskError
from unireward.judge import PairRequest, RewardModel
from unireward.tasks import get_task
from unireward.judging.render import load, render  # noqa: E402


def _tagged(images):
    """Images told apart by their size, so a scripted judge can see which one sits where."""
    return [im.resize((8 + 8 * k, 8)) for k, im in enumerate(images)]


def test_edit_templates_show_source_then_candidates():
    pair = get_task("image-edit/pair")
    parts = pair.render("make the sky red")
    assert [p for p in parts if isinstance(p, int)] == [0, 1, 2]
    text = "".join(p for p in parts if isinstance(p, str))
    assert "Instruction: make the sky red" in text and "Source image: " in text
    assert pair.domain == "edit" and pair.answer.allow_ties and pair.num_media == 3
    point = get_task("image-edit/point")
    assert [p for p in point.render("x") if isinstance(p, int)] == [0, 1]
    assert (point.answer.low, point.answer.high) == (1, 5)
    with pytest.raises(TaskError):
        pair.render("x", num_media=2)


def test_edit_rank_sends_source_first_and_unswaps(images):
    src, e1, e2 = _tagged(images)[:3]
    seen = []  # widths of the images each request shows, in order: the source image first in both orders

    def respond(x):
        shown = x.images
        seen.append([im.width for im in shown])
        return "Final Judgment: Image 1 is better than Image 2." if shown[1].width == e1.width else \
            "Final Judgment: Image 2 is better than Image 1."

    rm = RewardModel(ScriptedBackend(respond))
    r = rm.rank("make it blue", e1, e2, task="image-edit/pair", media=src, both_orders=True)
    assert r.winner == 1 and r.consistent is True and r.status == "ok"
    assert seen == [[src.width, e1.width, e2.width], [src.width, e2.width, e1.width]]
    # a tie is a verdict on this task
    tie = RewardModel(ScriptedBackend(lambda x: "Final Judgment: Both images are equally good."))
    assert tie.rank("i", e1, e2, task="image-edit/pair", media=src).winner == "tie"


def test_edit_without_source_is_an_item_error_not_a_crash(images):
    rm = RewardModel(ScriptedBackend(lambda x: "Final Judgment: Image 1 is better than Image 2."))
    out = rm.rank_batch([PairRequest("i", images[0], images[1]), PairRequest("i", images[0], images[1], images[2])],
                        task="image-edit/pair")
    assert out[0].status == "error" and "source image" in out[0].reason
    assert out[1].status == "ok" and out[1].winner == 1


def test_edit_score_and_group(images):
    src, *edits = _tagged(images)
    rm = RewardModel(ScriptedBackend(lambda x: f"Final Score: {min(5, x.images[1].width // 8)}"))
    r = rm.score("make it blue", edits[1], task="image-edit/point", media=src)
    assert r.score == 3 and r.status == "ok"
    # the wider edit wins every pair; the source rides along in every comparison
    wider = RewardModel(ScriptedBackend(lambda x: "Final Judgment: Image 1 is better than Image 2."
                                        if x.images[1].width > x.images[2].width and x.images[0].width == src.width
                                        else "Final Judgment: Image 2 is better than Image 1."))
    g = wider.rank_group("make it blue", edits, task="image-edit/pair", media=src)
    assert g.ranking == [3, 2, 1, 0] and g.unparsed == 0


def test_edit_pair_probs_on_a_tiny_model(tiny_judge, images):
    rm = tiny_judge
    res = rm.rank("make the circle blue", images[1], images[2], task="image-edit/pair", media=images[0])
    assert res.method == "probs" and res.status == "ok"
    assert math.isclose(sum(res.probs.values()), 1.0, rel_tol=1e-6)
    task = get_task("image-edit/pair")
    x = render(task, rm.prepare(task, "make the circle blue", [images[1], images[2]], images[0]), swap=False)
    assert len(x.images) == 3 and x.images[0].size == load(rm.spec, task, images[0]).size
    s = rm.score("make the circle blue", images[1], task="image-edit/point", media=images[0])
    assert s.status == "ok" and 1 <= s.expected_score <= 5
