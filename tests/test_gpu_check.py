"""The prepared GPU check runs end to end at tiny size on CPU and writes its one JSON file."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_tiny_writes_its_report(tmp_path):
    out = tmp_path / "check.json"
    env = dict(os.environ, PYTHON=sys.executable, UNIREWARD_GPU_CHECK_TINY="1")
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--out", str(out), "--n", "8",
                          "--group", "4", "--repeat", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["model"] == "tiny qwen2.5-vl" and report["device"] == "cpu"
    d, g, v = report["decisions"], report["group"], report["vision"]
    assert d["ok"] == d["requests"] == 8
    assert d["batched_per_s"] > 0 and d["forward_alone_per_s"] > 0 and 0 < d["pct_of_prefill_bound"]
    assert g["prompts"] == 12 and g["group_speedup"] > 0 and g["max_abs_diff_p_first"] < 1e-4
    assert 0 < v["share"] < 1
    assert "group_speedup:" in run.stdout
