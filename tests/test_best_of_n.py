"""`unireward best-of-n` and `rewards.best_of_n`: the best of N candidates per prompt by a pairwise judge's win rate
(the shipped sandbox judge on sandbox images) or a scorer's score (a tiny scorer), bad lines as error rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from unireward.cli import main
from unireward.rewards.best import best_of_n, pick
from unireward.rewards.group import GroupRequest, GroupReward

SHIPPED = "src/unireward/sandbox/judge"


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    from unireward.sandbox.demo import write_examples

    return write_examples(tmp_path_factory.mktemp("examples"))


def rows_of(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_shipped_judge_picks_the_image_that_matches_its_caption(examples, capsys):
    folder = examples["a"].parent
    lines = [{"id": "circle", "prompt": "a red circle at the top left",
              "candidates": ["b.png", "c.png", "a.png", "d.png"]},
             {"prompt": "a red circle at the top left", "candidates": ["a.png", "no-such.png"]},
             "a string", {"id": "lonely", "prompt": "a red circle", "candidates": ["a.png"]}]
    groups = folder / "groups.jsonl"
    groups.write_text("".join(json.dumps(x) + "\n" for x in lines) + "{not json\n")
    code = main(["best-of-n", "--model", SHIPPED, "--task", "image-gen/pair", "--input", str(groups), "--no-progress"])
    rows = rows_of(capsys)
    assert code == 1 and [r["id"] for r in rows] == ["circle", "2", "3", "lonely", "5"]
    first = rows[0]
    assert first["best"] == 2 and first["mode"] == "win-rate" and first["status"] == "ok"
    assert first["rewards"][2] == max(first["rewards"]) and len(first["rewards"]) == 4
    assert [r["status"] for r in rows[1:]] == ["error"] * 4 and all(r["best"] is None for r in rows[1:])
    assert "no-such.png" in rows[1]["reason"] and "JSON object" in rows[2]["reason"]
    assert "at least 2" in rows[3]["reason"] and "not valid JSON" in rows[4]["reason"]
    out = folder / "best.jsonl"
    good = folder / "good.jsonl"
    good.write_text(json.dumps(lines[0]) + "\n")
    assert main(["best-of-n", "--model", SHIPPED, "--input", str(good), "--out", str(out), "--one-order",
                 "--no-progress"]) == 0
    assert json.loads(out.read_text())["best"] == 2


def test_a_scorer_picks_by_score(tmp_path, capsys):
    from unireward.judge import RewardModel
    from unireward.models.scorers.tiny import build_tiny_scorer

    folder = build_tiny_scorer("pickscore", tmp_path / "pickscore")
    rng = np.random.default_rng(0)
    paths = []
    for k in range(4):
        paths.append(tmp_path / f"{k}.png")
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(paths[-1])
    assert main(["best-of-n", "--model", str(folder), "--dtype", "float32", "--prompt", "a red cat",
                 *map(str, paths)]) == 0
    (row,) = rows_of(capsys)
    rm = RewardModel.load(str(folder), dtype=None)
    scores = [rm.score("a red cat", str(p)).score for p in paths]
    assert row["mode"] == "point" and row["best"] == int(np.argmax(scores))
    assert row["rewards"] == pytest.approx(scores, abs=1e-5)
    assert main(["best-of-n", "--model", str(folder), "--mode", "win-rate", "--prompt", "a red cat",
                 *map(str, paths)]) == 0
    assert rows_of(capsys)[0]["best"] == int(np.argmax(scores))  # win rates rank as the scores do


def test_pick_rules():
    g = GroupReward(task="t", mode="point", rewards=[0.2, None, 0.7, 0.7], id="x")
    assert pick(g).best == 2  # ties go to the lower index; no reward cannot win
    none = pick(GroupReward(task="t", mode="win-rate", rewards=[None, None]))
    assert none.best is None and none.status == "unparsed"

    class Flaky:  # the batched call fails; each group alone is judged, the bad one is its own error
        def group_reward_batch(self, groups, **kw):
            if len(groups) > 1 or groups[0].id == "bad":
                raise RuntimeError("boom")
            return [GroupReward(task="t", mode=kw["mode"], rewards=[0.1, 0.9], id=groups[0].id)]

    out = best_of_n(Flaky(), [GroupRequest("p", [1, 2], id="ok"), GroupRequest("p", [1, 2], id="bad")])
    assert [(o.id, o.best, o.status) for o in out] == [("ok", 1, "ok"), ("bad", None, "error")]
    assert "boom" in out[1].reason
    with pytest.raises(ValueError):
        best_of_n(Flaky(), [], mode="median")
