"""The 2026 reward benchmarks on tiny copies in their published layouts (tests/fixtures/bench): MMRB2 (text-to-image,
editing, interleaved, reasoning; both orders judged separately under the reference protocol, the authors' accuracy)
and EditReward-Bench (2/3/4-candidate groups, the authors' pairwise and group accuracies), with numbers worked out
by hand for a judge that prefers the brighter image and the higher "[qN]" tag; VL-RewardBench's overall and macro
accuracies labelled side by side; a scorer's run of MMRB2 judges what a scorer can and errs the rest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from unireward.backends.scripted import ScriptedBackend
from unireward.bench import BenchConfig, load_benchmark, run_bench
from unireward.bench.loaders import editreward_gold
from unireward.errors import DataError
from unireward.judge import RewardModel

FIX = Path(__file__).parent / "fixtures" / "bench"


def preference(x, prefix, choices):
    """Prefers the brighter of the two candidate images (the last two images: an edit shows its source first),
    or the answer with the higher [qN] tag; equal qualities are a tie."""
    text = "".join(p for p in x.parts if isinstance(p, str))
    tags = [int(t) for t in re.findall(r"\[q(\d)\]", text)]
    if len(tags) == 2:
        a, b = tags
    else:
        a, b = (float(np.asarray(im).mean()) for im in x.images[-2:])
    if abs(a - b) < 3:
        return [0.05, 0.05, 0.9]
    return [0.9, 0.05, 0.05] if a > b else [0.05, 0.9, 0.05]


def judge() -> RewardModel:
    return RewardModel(ScriptedBackend(lambda x: "", probs=preference))


def run(name: str, tmp_path, protocol: str, rm=None, **kw):
    cfg = BenchConfig(name, data=str(FIX / name), protocol=protocol, out=str(tmp_path / f"{name}-{protocol}"),
                      progress=False, **kw)
    return run_bench(cfg, judge=rm or judge())


def test_mmrb2_loader_maps_each_task_and_names_what_it_cannot_judge():
    b = load_benchmark("mmrb2", FIX / "mmrb2")
    assert len(b.items) == 10 and b.order_rule == "both" and b.published == "mmrb2"
    by_id = {it.id: it for it in b.items}
    assert by_id["oneigbench_1_x"].task == "image-gen/pair" and by_id["oneigbench_1_x"].gold == 1
    assert by_id["wise_2_x"].gold == 2 and by_id["wise_2_x"].prompt == "a glowing lantern"
    a, b_, source = by_id["emu-edit_1_x"].fetch()
    assert by_id["emu-edit_1_x"].task == "image-edit/pair" and Path(source).name.startswith("emu-edit_1_x_p")
    assert Path(a).is_file() and Path(b_).is_file()
    ans = by_id["blink_1_x"].fetch()
    assert by_id["blink_1_x"].task == "image-und/pair" and ans[0] == "The left one [q5]" and Path(ans[2]).is_file()
    assert "2 input images" in by_id["new_synthetic_edit_3_x"].skip and "interleave" in by_id["isgbench_1_x"].skip
    assert sum(it.skip is not None for it in b.items) == 2 and any("1 edit pair(s) skipped" in n for n in b.notes)
    assert [it.groups["task"] for it in load_benchmark("mmrb2", FIX / "mmrb2", task="t2i,reasoning").items] == \
        ["t2i"] * 4 + ["reasoning"] * 2


def test_mmrb2_published_accuracy_by_hand(tmp_path):
    res = run("mmrb2", tmp_path, "reference")
    pub = res["published"]["tasks"]
    # t2i: 4 pairs x 2 orders, the judge errs on r2ibench_3 in both -> 6/8; edit: 2 judged pairs -> 4/4, the
    # two-image pair not judged; interleaved: nothing judged; reasoning 4/4
    assert (pub["t2i"]["correct"], pub["t2i"]["judged"]) == (6, 8)
    assert (pub["edit"]["accuracy"], pub["edit"]["judged"], pub["edit"]["not_judged"]) == (1.0, 4, 1)
    assert pub["interleaved"]["accuracy"] is None and pub["interleaved"]["not_judged"] == 1
    assert pub["reasoning"]["accuracy"] == 1.0
    assert res["published"]["average"] == pytest.approx((0.75 + 1 + 1) / 3)
    assert res["published"]["average_over"] == ["t2i", "edit", "reasoning"]
    recs = [json.loads(x) for x in (Path(res["out"]) / "items.jsonl").read_text().splitlines()]
    assert all(len(r["orders"]) == 2 for r in recs if r["status"] == "ok")
    assert res["skipped"] == 2 and res["overall"]["n"] == 8 and res["overall"]["errors"] == 0
    report = (Path(res["out"]) / "report.md").read_text()
    assert "MMRB2 accuracy (the published definition)" in report and "compute_accuracy.py" in report
    assert "2 item(s) skipped" in report
    clean = run("mmrb2", tmp_path, "clean")["published"]["tasks"]
    assert (clean["t2i"]["correct"], clean["t2i"]["judged"]) == (3, 4)  # one combined verdict per pair


def test_editreward_gold_reads_rankings_in_candidate_terms():
    assert editreward_gold("A>B", "AvsB") == 1 and editreward_gold("B>A", "AvsB") == 2
    assert editreward_gold("C>A", "AvsC") == 2 and editreward_gold("B>C", "BvsC") == 1
    assert editreward_gold("D>C", "CvsD") == 2 and editreward_gold("A=B=Good", None) == "tie"
    with pytest.raises(DataError):
        editreward_gold("better", "AvsB")


def test_editreward_published_accuracy_by_hand(tmp_path):
    b = load_benchmark("editreward", FIX / "editreward")
    assert len(b.items) == 13 and {it.task for it in b.items} == {"image-edit/pair"}
    assert [it.gold for it in b.items[:4]] == [1, 2, "tie", 2]
    res = run("editreward", tmp_path, "clean")
    k = res["published"]["k"]
    assert k["2pair"]["accuracy"] == pytest.approx(3 / 4)  # the explicit tie is right, e4 wrong
    assert k["3pair"]["accuracy"] == 1.0 and k["3pair"]["group_accuracy"] == 1.0
    assert k["4pair"]["accuracy"] == pytest.approx(5 / 6) and k["4pair"]["group_accuracy"] == 0.0
    assert res["published"]["overall"] == pytest.approx(11 / 13)
    assert res["groups"]["k"]["4pair"]["accuracy"] == pytest.approx(5 / 6)


def test_vlrb_report_labels_overall_and_macro(tmp_path):
    res = run("vlrb", tmp_path, "clean")
    report = (Path(res["out"]) / "report.md").read_text()
    assert "| overall (all items pooled) | macro (mean of group accuracies) |" in report
    assert "general, hallucination, reasoning" in report


def test_a_scorer_runs_mmrb2_where_it_can(tmp_path):
    from unireward.models.scorers.tiny import build_tiny_scorer

    rm = RewardModel.load(str(build_tiny_scorer("pickscore", tmp_path / "ps")), dtype=None)
    res = run("mmrb2", tmp_path, "reference", rm=rm)
    pub = res["published"]["tasks"]
    assert pub["t2i"]["judged"] == 8 and pub["edit"]["judged"] == 0 and pub["reasoning"]["judged"] == 0
    recs = [json.loads(x) for x in (Path(res["out"]) / "items.jsonl").read_text().splitlines()]
    skipped = [r["reason"] for r in recs if r["status"] == "skipped"]
    assert len(skipped) == 6 and sum("is a scorer" in e for e in skipped) == 4  # + the 2 no task can judge
    assert res["overall"]["errors"] == 0


def test_results_table_rows_are_added_and_updated(tmp_path):
    from unireward.bench.leaderboard import update_table
    from unireward.cli import main

    table = tmp_path / "benchmarks.md"
    table.write_text("# Results\n\n## MMRB2\n\n<!-- results: mmrb2 -->\n"
                     "| model | protocol | data | t2i | edit | interleaved | reasoning | average | items | source |\n"
                     "|---|---|---|---|---|---|---|---|---|---|\n"
                     "| Gemini 3 Pro | published | the benchmark | 74.4 | 74.9 | 76.4 | 79.5 | 76.3 | 4000 "
                     "| MMRB2 paper |\n"
                     "<!-- /results -->\n\nmore text\n")
    res = run("mmrb2", tmp_path, "reference")
    row = update_table(table, res)
    assert row.startswith("| scripted | reference | fixture copy, not the benchmark (10 items) | 75.0 | 100.0 | "
                          "- |")
    assert "| 91.7 |" in row  # the average of 75, 100 and 100
    update_table(table, res)  # the same run again: the row is replaced, not repeated
    text = table.read_text()
    assert text.count("| scripted | reference |") == 1 and "| Gemini 3 Pro | published |" in text
    assert text.endswith("<!-- /results -->\n\nmore text\n")
    update_table(table, run("editreward", tmp_path, "clean"))  # no block yet: one is appended
    assert "## EditReward-Bench\n\n<!-- results: editreward -->" in table.read_text()
    table.write_text(table.read_text().replace("| reasoning | average |", "| reasoning | mean |"))
    from unireward.errors import ConfigError

    with pytest.raises(ConfigError, match="columns"):
        update_table(table, res)
    # the command line: a scorer on the VL-RewardBench fixture cannot judge it (understanding), on MMRB2's t2i it can
    from unireward.models.scorers.tiny import build_tiny_scorer

    scorer = build_tiny_scorer("clipscore", tmp_path / "clip")
    assert main(["bench", "mmrb2", "--model", str(scorer), "--data", str(FIX / "mmrb2"), "--task", "t2i",
                 "--out", str(tmp_path / "cli"), "--no-progress", "--table", str(tmp_path / "new.md")]) == 0
    assert "| clip (scorer clipscore) | clean | fixture copy, not the benchmark (4 items) |" in \
        (tmp_path / "new.md").read_text()


def test_the_shipped_results_file_takes_new_rows(tmp_path):
    import shutil

    from unireward.bench.leaderboard import update_table

    doc = tmp_path / "benchmarks.md"
    shutil.copy(Path(__file__).parents[1] / "docs" / "benchmarks.md", doc)
    before = doc.read_text()
    published = [line for line in before.splitlines() if "| published |" in line]
    assert len(published) >= 9
    for name, protocol in (("mmrb2", "reference"), ("editreward", "clean"), ("vlrb", "clean")):
        update_table(doc, run(name, tmp_path, protocol))  # the shipped columns are the ones a run writes
    after = doc.read_text()
    assert all(line in after for line in published) and after.count("<!-- results:") == before.count("<!-- results:")
    assert after.count("| scripted |") == 3
