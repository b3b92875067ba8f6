"""`unireward parse` run as a subprocess on the judge-output fixtures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from unireward.tasks import get_task

FIXTURES = Path(__file__).parent / "fixtures" / "judge_outputs.jsonl"
RECORDS = [json.loads(line) for line in FIXTURES.read_text().splitlines() if line.strip()]


def unireward(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unireward", *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


def outputs(proc: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _cases(task: str, strict: bool) -> list[dict]:
    return [r for r in RECORDS if r["task"] == task and r.get("strict", False) == strict and "allow_ties" not in r]


@pytest.mark.parametrize("task", ["image-gen/pair", "image-und/pair", "video-gen/point", "image-und/point"])
def test_parse_file(tmp_path, task):
    cases = _cases(task, strict=False)
    path = tmp_path / "outputs.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": r["text"]}) + "\n" for i, r in enumerate(cases)))
    proc = unireward("parse", "--task", task, str(path))
    assert proc.returncode == 0, proc.stderr
    got = outputs(proc)
    assert [o["id"] for o in got] == list(range(len(cases)))
    key = "winner" if task.endswith("/pair") else "score"
    for out, case in zip(got, cases):
        assert "text" not in out
        assert out[key] == case[key], (case["text"], out)
        assert ("reason" in out) == (out[key] is None), out
        assert out.get("dimensions", {}) == case.get("dimensions", {}), out


def test_parse_stdin_json_strings_strict():
    point = _cases("image-und/point", strict=True)
    assert any(c["score"] is None for c in point) and any(c["score"] is not None for c in point)
    proc = unireward("parse", "--task", "image-und/point", "--strict",
                     stdin="".join(json.dumps(c["text"]) + "\n" for c in point))
    assert proc.returncode == 0, proc.stderr
    assert [o["score"] for o in outputs(proc)] == [c["score"] for c in point]


def test_parse_fixture_file_directly_passes_fields_through():
    proc = unireward("parse", "--task", "video-gen/pair", str(FIXTURES))
    assert proc.returncode == 0, proc.stderr
    got = outputs(proc)
    assert len(got) == len(RECORDS)
    for out, record in zip(got, RECORDS):
        assert out["task"] == record["task"]  # passed through
        assert out["winner"] in (1, 2, "tie", None)
        if record["task"] == "video-gen/pair" and not record.get("strict") and "allow_ties" not in record:
            assert out["winner"] == record["winner"]


def test_dimensions_variant():
    text = "Alignment: Video 2 is better than Video 1.\nPhysics: Both videos are equally good.\n" \
           "Final Judgment: Video 2 is better than Video 1."
    proc = unireward("parse", "--task", "video-gen/pair+dims", stdin=json.dumps({"text": text}) + "\n")
    reward = get_task("video-gen/pair+dims").parse(text).reward  # the family's scalar for RL, printed as given
    assert outputs(proc) == [{"winner": 2, "dimensions": {"alignment": 2, "physics": "tie"}, "reward": reward}]


def test_bad_lines_are_reported_and_the_rest_goes_on():
    stdin = "\n".join([
        json.dumps({"id": "a", "text": "Final Score: 4"}),
        "Final Score: 4",  # raw text, not JSON
        "",  # blank lines are skipped
        json.dumps({"id": "b"}),  # no text
        "[1, 2]",
        json.dumps("Final Score: N/A"),
        json.dumps({"id": "c", "text": "Final Score: 3.5", "score": 1, "reason": "stale"}),
    ]) + "\n"
    proc = unireward("parse", "--task", "image-gen/point", stdin=stdin)
    assert proc.returncode == 1
    got = outputs(proc)
    assert len(got) == 6
    reward = get_task("image-gen/point").parse("Final Score: 4").reward
    assert reward is not None and got[0] == {"id": "a", "score": 4, "reward": reward}
    assert got[1]["line"] == 2 and "line 2" in got[1]["error"] and "JSON" in got[1]["error"]
    assert got[2]["line"] == 4 and "text" in got[2]["error"]
    assert got[3]["line"] == 5 and "error" in got[3]
    assert got[4]["score"] is None and got[4]["reason"]
    # parsed fields replace stale ones
    assert got[5] == {"id": "c", "score": 3.5, "reward": get_task("image-gen/point").parse("Final Score: 3.5").reward}


def test_unparsed_outputs_are_not_errors():
    proc = unireward("parse", "--task", "image-und/pair", stdin='"<think>Answer 1 is better because"\n""\n')
    assert proc.returncode == 0
    got = outputs(proc)
    assert [o["winner"] for o in got] == [None, None]
    assert all(o["reason"] for o in got)


def test_unknown_task_and_missing_file():
    proc = unireward("parse", "--task", "image-gen/triple", stdin="")
    assert proc.returncode == 1 and "unknown task" in proc.stderr
    proc = unireward("parse", "--task", "image-gen/pair", "/nonexistent/outputs.jsonl")
    assert proc.returncode == 1 and "/nonexistent/outputs.jsonl" in proc.stderr


def test_help_lists_parse():
    proc = unireward("--help")
    assert proc.returncode == 0 and "parse" in proc.stdout
