"""Rejection sampling (`unireward train reject`): on the shipped sandbox judge and a handful of sandbox samples,
traces are kept iff their parsed verdict equals the label, the hard set is the rest, the spread set is the
samples right on some traces only, seeds are recorded and a resumed run adds no duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unireward.config import PRESETS, load_config
from unireward.data.schema import read_samples, write_samples
from unireward.errors import ConfigError
from unireward.tasks import get_task
from unireward.train.rejection import RejectConfig, batch_seed, run_rejection, verdict_matches

ROOT = Path(__file__).resolve().parents[1]
JUDGE = ROOT / "src" / "unireward" / "sandbox" / "judge"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Five sandbox samples (image-gen and video-gen pairs, an image-gen point); the first pair's label is
    flipped, so the judge gets it wrong on every trace and it lands in the hard set."""
    from unireward.sandbox.data import build_samples, write_media

    root = tmp_path_factory.mktemp("reject-data")
    samples = []
    for task, n in (("image-gen/pair", 2), ("video-gen/pair", 2), ("image-gen/point", 1)):
        s, jobs = build_samples(task, n, "train", seed=3, image_size=56, rationale=True)
        write_media(root, jobs)
        samples += s
    samples[0].label = {1: 2, 2: 1, "tie": 1}[samples[0].label]
    write_samples(root / "first.jsonl", samples[:3])
    write_samples(root / "all.jsonl", samples)
    return root


def _config(data: Path, out: Path, name: str = "first.jsonl", **kw) -> RejectConfig:
    return RejectConfig(model=str(JUDGE), data=[str(data / name)], out_dir=str(out), k=3, temperature=1.0,
                        max_new_tokens=96, seed=1, batch_size=2, num_threads=1, progress=False, **kw)


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def test_kept_iff_the_parsed_verdict_matches_and_the_hard_set_is_the_rest_and_resume_adds_nothing(data, tmp_path):
    out = tmp_path / "reject"
    first = run_rejection(_config(data, out))
    assert (first.samples, first.new, first.errors) == (3, 3, 0)
    records = {r["id"]: r for r in _records(out)}
    for rec in records.values():
        task = get_task(rec["task"])
        for t in rec["traces"]:  # the verdict as the task's own parser reads it, against the label
            assert t["correct"] == verdict_matches(task, task.answer.parse(t["text"]), rec["label"])
            assert t["temperature"] == 1.0 and t["top_p"] == 1.0 and isinstance(t["seed"], int)
        assert rec["status"] == ("kept" if any(t["correct"] for t in rec["traces"]) else "hard")
    flipped = _records(out)[0]
    assert flipped["status"] == "hard"  # the judge reads the pair right, the label says otherwise
    # the batch seeds: batches of two, in file order
    ids = list(records)
    assert {t["seed"] for t in records[ids[0]]["traces"]} == {batch_seed(1, ids[:2])}
    assert {t["seed"] for t in records[ids[2]]["traces"]} == {batch_seed(1, ids[2:3])}

    sft = list(read_samples(out / "sft.jsonl"))
    hard = list(read_samples(out / "hard.jsonl"))
    assert {s.id for s in hard} == {i for i, r in records.items() if r["status"] == "hard"}
    spread = list(read_samples(out / "spread.jsonl"))  # right on some traces, not all: GRPO groups that vary
    assert {s.id for s in spread} == {i for i, r in records.items() if 0 < r["correct"] < r["k"]}
    assert first.spread == len(spread) and all(s.meta["rejection"]["k"] == 3 for s in spread)
    assert all(0 < s.meta["rejection"]["correct"] < 3 for s in spread)
    want = {(i, t["text"].strip()) for i, r in records.items() for t in r["traces"] if t["correct"]}
    assert {(s.meta["rejection"]["source_id"], s.target) for s in sft} == want  # distinct right traces
    assert len(sft) == len(want)
    for s in sft:
        rec = records[s.meta["rejection"]["source_id"]]
        assert s.label == rec["label"] and s.id.startswith(rec["id"] + "/rs")
        assert verdict_matches(get_task(s.task), get_task(s.task).answer.parse(s.target), s.label)
        assert s.rationale and s.target.startswith(s.rationale)  # the checklist before "Final Judgment: "
        assert all(Path(m).is_absolute() and Path(m).exists() for m in s.media)

    # resume: the same command judges nothing again; a larger data file adds only the new samples
    again = run_rejection(_config(data, out))
    assert again.new == 0 and len(_records(out)) == 3
    assert (out / "sft.jsonl").read_text() == "".join(s.to_json() + "\n" for s in sft)
    more = run_rejection(_config(data, out, name="all.jsonl"))
    assert (more.new, more.samples) == (2, 5)
    recs = _records(out)
    assert len({r["id"] for r in recs}) == len(recs) == 5
    ids_sft = [s.id for s in read_samples(out / "sft.jsonl")]
    assert len(ids_sft) == len(set(ids_sft)) and set(ids_sft) >= {s.id for s in sft}
    assert more.per_task["image-gen/point"]["samples"] == 1


def test_the_same_seed_reproduces_the_traces_and_max_per_sample_caps_them(data, tmp_path):
    a = tmp_path / "a"
    run_rejection(_config(data, a, max_per_sample=1))
    b = tmp_path / "b"
    run_rejection(_config(data, b, max_per_sample=1))
    assert [r["traces"] for r in _records(a)] == [r["traces"] for r in _records(b)]
    per_source = [s.meta["rejection"]["source_id"] for s in read_samples(a / "sft.jsonl")]
    assert len(per_source) == len(set(per_source))


def test_verdict_matching_ties_points_and_unparsed():
    pair, point = get_task("image-gen/pair"), get_task("image-gen/point")
    tie = pair.target("tie", rationale="colour red: Image 1 red yes, Image 2 red yes")
    assert verdict_matches(pair, pair.answer.parse(tie), "tie")
    assert not verdict_matches(pair, pair.answer.parse(tie), 1)
    assert not verdict_matches(pair, pair.answer.parse("no verdict here"), 1)
    assert verdict_matches(point, point.answer.parse(point.target(3)), 3)
    assert not verdict_matches(point, point.answer.parse(point.target(3)), 4)
    assert verdict_matches(point, point.answer.parse(point.target(3)), 4, point_tolerance=1.0)


def test_presets_load_and_bad_settings_are_refused():
    for path in sorted((PRESETS / "reject").glob("*.yaml")):
        c = load_config(RejectConfig, path)
        assert c.k >= 4 and c.temperature > 0
    think = load_config(RejectConfig, PRESETS / "reject" / "think_qwen2_5_vl_7b.yaml")
    assert (think.family, think.variant, think.k) == ("think", "qwen2.5", 8)
    with pytest.raises(ConfigError, match="temperature"):
        RejectConfig(temperature=0)
    with pytest.raises(ConfigError, match="k must be"):
        RejectConfig(k=0)
