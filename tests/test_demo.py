"""`unireward demo` end to end on the smoke preset (seconds-sized stages): every step runs and the report is written."""

from __future__ import annotations

import json

from unireward.sandbox.demo import DemoConfig, run_demo


def test_demo_smoke_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    summary = run_demo(DemoConfig(out_dir=str(out), preset="smoke", progress=False, eval_seeds=(1000,)))
    assert (out / "report.html").is_file() and (out / "summary.json").is_file()
    assert summary["generator"]["judge"] in ("trained", "oracle")
    for arm in ("base", "control", "dpo"):
        assert 0.0 <= summary["generator"][arm] <= 1.0
    assert (out / "pairs" / "records.jsonl").is_file()
    ladder = json.loads((out / "ladder" / "ladder.json").read_text())
    assert [s["cached"] for s in ladder["stages"]] == [False, False]
    assert ladder["final_model"] == summary["judge"]["model"]
