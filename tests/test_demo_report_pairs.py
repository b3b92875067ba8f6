"""The demo report shows, under each constructed pair, the verdicts and scores of the two candidates shown (never
the verdicts of the prompt's other pairs), says the score scale, and lays the judge table out as task x metric
with n per task (issue 16, defect 2)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from unireward.sandbox.demo import JUDGE_COLUMNS, _judge_table, _pairs_for_report
from unireward.sandbox.report import write_report


def _records(tmp_path):
    """A construction record as `construct` writes it: 6 candidates, 3 pairs, chosen 4 and rejected 1."""
    for k in range(6):
        Image.fromarray(np.full((8, 8, 3), 40 * k, np.uint8)).save(tmp_path / f"c{k}.png")
    pairs = [(0, 5, 1), (4, 2, 1), (3, 1, 1)]  # (a, b, winner): 4 beat 2, 1 lost to 3
    record = {"id": "p0", "prompt": "a red circle at the top left", "task": "image-gen", "status": "kept",
              "chosen": {"index": 4, "path": "c4.png", "score": 4.6},
              "rejected": {"index": 1, "path": "c1.png", "score": 1.8},
              "candidates": [{"index": k, "path": f"c{k}.png"} for k in range(6)],
              "pairs": [{"a": a, "b": b, "winner": w, "raw": [f"verdict of {a} vs {b}"], "status": "ok"}
                        for a, b, w in pairs],
              "scores": [{"index": k, "value": 1.0 + k / 2, "raw": f"Final Score: score text of {k}"}
                         for k in range(6)]}
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return path


def test_each_pair_shows_its_own_verdicts_and_scores_on_a_stated_scale(tmp_path):
    (shown,) = _pairs_for_report(_records(tmp_path), limit=6)
    texts = "\n".join(shown["verdicts"])
    assert "verdict of 4 vs 2" in texts and "verdict of 3 vs 1" in texts
    assert "verdict of 0 vs 5" not in texts  # a pair of two other candidates
    assert "candidate 4 (chosen)" in texts and "candidate 1 (rejected)" in texts
    assert shown["scale"] == "1-5" and shown["scores"] == {"chosen": 4.6, "rejected": 1.8}
    assert shown["score_raw"] == {"chosen": "Final Score: score text of 4", "rejected": "Final Score: score text of 1"}
    html = write_report(tmp_path / "r.html", pairs=[shown]).read_text()
    assert "on the 1-5 scale" in html and "score text of 4" in html and "verdict of 0 vs 5" not in html


def test_the_judge_table_is_task_by_metric_with_n(tmp_path):
    ev = {"n": 40, "image-gen/pair": {"acc": 0.9, "acc_crisp": 1.0, "acc_generated": 0.75, "acc_both_orders": 0.85},
          "image-gen/point": {"spearman": 0.97, "exact": 0.6, "unparsed": 0.0}}
    rows = _judge_table(ev)
    assert rows == [{"task": "image-gen/pair", "n": 40, "acc": 0.9, "acc_crisp": 1.0, "acc_generated": 0.75,
                     "acc_both_orders": 0.85},
                    {"task": "image-gen/point", "n": 40, "spearman": 0.97, "exact": 0.6, "unparsed": 0.0}]
    html = write_report(tmp_path / "r.html", judge_table=rows, columns=JUDGE_COLUMNS,
                        judge_note="n: samples").read_text()
    head = html[html.index("<h2>The judge"):html.index("</table>")]
    assert "<th>task</th><th>n</th><th>pairwise acc.</th>" in head and head.count("<tr>") == 3
    assert "<td>image-gen/pair</td><td>40</td><td>0.900</td>" in head
