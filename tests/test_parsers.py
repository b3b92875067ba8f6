"""Parsers on realistic judge outputs (tests/fixtures/judge_outputs.jsonl) and on every task's own targets.

Fixture records: {"task", "text", "winner": 1|2|"tie"|null} for pair tasks, {"task", "text", "score":
number|null, "dimensions": {...}} for point tasks; optional "strict": true and "allow_ties": false.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from unireward.tasks import TIE, PairVerdict, PointVerdict, get_task, list_tasks

FIXTURES = Path(__file__).parent / "fixtures" / "judge_outputs.jsonl"
RECORDS = [json.loads(line) for line in FIXTURES.read_text().splitlines() if line.strip()]
PAIR_TASKS = [t for t in list_tasks() if get_task(t).is_pair]
POINT_TASKS = [t for t in list_tasks() if not get_task(t).is_pair]
RATIONALE = "{n} 1 has richer detail, but {n} 2 follows the prompt more closely. {n} 1 is better at colour."


def _task(record):
    task = get_task(record["task"])
    if record.get("allow_ties") is False:
        task = dataclasses.replace(task, answer=dataclasses.replace(task.answer, allow_ties=False))
    return task


def _id(record):
    return f"{record['task']}{'-strict' if record.get('strict') else ''}:{record['text'][:40]!r}"


def test_fixtures_cover_every_task():
    assert len(RECORDS) >= 60
    assert {r["task"] for r in RECORDS} == set(list_tasks())


@pytest.mark.parametrize("record", RECORDS, ids=[_id(r) for r in RECORDS])
def test_fixture(record):
    task = _task(record)
    got = task.parse(record["text"], strict=record.get("strict", False))
    if task.is_pair:
        assert isinstance(got, PairVerdict)
        assert got.winner == record["winner"], got.reason
        if "dimensions" in record:
            assert got.dimensions == record["dimensions"]
    else:
        assert isinstance(got, PointVerdict)
        assert got.score == record["score"], got.reason
        if got.score is not None:
            assert isinstance(got.score, float)
        assert got.dimensions == record.get("dimensions", {})
    # never a silent default: unparsed always says why, parsed never carries a reason
    assert got.parsed == (got.reason is None), got.reason
    if not got.parsed:
        assert got.reason.strip()


def _winners(task):
    return [1, 2, TIE] if task.answer.allow_ties else [1, 2]


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("name", PAIR_TASKS)
def test_pair_targets_round_trip(name, strict):
    for task in (get_task(name), get_task(name, dimensions=True)):
        noun = task.answer.noun
        for winner in _winners(task):
            for rationale in (None, RATIONALE.format(n=noun)):
                dims = {d: w for d, w in zip(task.answer.dimensions, [2, TIE, 1][::-1 if winner == 1 else 1])}
                got = task.parse(task.target(winner, rationale=rationale, dimensions=dims), strict=strict)
                assert got.winner == winner, (task.key, winner, rationale, got.reason)
                assert got.dimensions == dims
                assert got.reason is None


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("name", PAIR_TASKS)
def test_pair_targets_round_trip_without_ties(name, strict):
    task = get_task(name)
    task = dataclasses.replace(task, answer=dataclasses.replace(task.answer, allow_ties=False))
    for winner in (1, 2):
        assert task.parse(task.target(winner), strict=strict).winner == winner
    tie_line = get_task(name).target(TIE)
    got = task.parse(tie_line, strict=strict)
    assert got.winner is None and got.reason


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("name", POINT_TASKS)
def test_point_targets_round_trip(name, strict):
    for task in (get_task(name), get_task(name, dimensions=True)):
        fmt = task.answer
        values = fmt.values()
        for i, score in enumerate(values):
            dims = {d: values[(i + k) % len(values)] for k, d in enumerate(fmt.dimensions)}
            for rationale in (None, f"An earlier draft gave Score: {values[-1]}; this is revised."):
                got = task.parse(task.target(score, rationale=rationale, dimensions=dims), strict=strict)
                assert got.score == score, (task.key, score, got.reason)
                assert isinstance(got.score, float)
                assert got.dimensions == dims
                assert got.reason is None
        # a half point inside the scale is written as a decimal and read back
        half = values[0] + 0.5
        assert task.parse(task.target(half), strict=strict).score == half


def test_point_scores_are_numeric_not_lexicographic():
    task = get_task("image-und/point")
    nine, ten = (task.parse(f"Final Score: {v}").score for v in ("9", "10"))
    assert ten > nine


def test_target_for_dimension_task_mentions_every_dimension():
    task = get_task("video-gen/point", dimensions=True)
    text = task.target(3, dimensions={"alignment": 4, "physics": 2, "style": 5})
    assert task.parse(text).dimensions == {"alignment": 4, "physics": 2, "style": 5}


GARBAGE = ["", " ", "\n\n", "1 2", "Image", "Final Judgment:", "Final Score:", "<answer></answer>", "<think>",
           "Image 1 and Image 2", "Score", "The answer is 42.", "Image 3 is better.", "Final Score: abc",
           "Answer 1 is not better than Answer 2.", "N/A", "null", "…"]


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("text", GARBAGE)
def test_unparsed_is_explicit_never_a_default(text, strict):
    for name in list_tasks():
        got = get_task(name).parse(text, strict=strict)
        value = got.winner if isinstance(got, PairVerdict) else got.score
        assert value is None, (name, text, value)
        assert not got.parsed
        assert isinstance(got.reason, str) and got.reason


@pytest.mark.parametrize("bad", [None, 7, b"Image 1 is better."])
def test_non_string_input_is_unparsed(bad):
    for name in list_tasks():
        got = get_task(name).parse(bad)
        assert not got.parsed and got.reason


def test_strict_mode_takes_strings_from_the_format():
    # strict accepts exactly the format's verdict lines; a format with another prefix changes what strict accepts
    task = get_task("image-gen/pair")
    other = dataclasses.replace(task, answer=dataclasses.replace(task.answer, prefix="Verdict: "))
    assert other.parse("Verdict: Image 2 is better than Image 1.", strict=True).winner == 2
    assert other.parse("Final Judgment: Image 2 is better than Image 1.", strict=True).winner is None
    point = get_task("image-und/point")
    other = dataclasses.replace(point, answer=dataclasses.replace(point.answer, prefix="Rating: "))
    assert other.parse("Rating: 6", strict=True).score == 6
    assert other.parse("Final Score: 6", strict=True).score is None
