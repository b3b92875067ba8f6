"""Kill a real `unireward construct` run with SIGKILL mid-run, restart it, and compare with an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _setup(tmp: Path) -> Path:
    from unireward.sandbox.generator import build_generator, save_generator
    from unireward.sandbox.world import sample_scene

    save_generator(build_generator(seed=0), tmp / "gen")
    rng = np.random.default_rng(0)
    with (tmp / "prompts.jsonl").open("w") as f:
        for i in range(12):
            f.write(json.dumps({"id": f"p{i:02d}", "prompt": sample_scene(rng).caption()}) + "\n")
    cfg = tmp / "c.yaml"
    cfg.write_text(f"prompts: {tmp / 'prompts.jsonl'}\ntask: image-gen\nsampler: sandbox-generator\n"
                   f"policy_model: {tmp / 'gen'}\nddim_steps: 1\njudge: oracle\nnum_candidates: 4\nchunk_size: 1\n")
    return cfg


def _cmd(cfg: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "unireward", "construct", "--config", str(cfg), "--no-progress",
            f"output_dir={out}"]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _pairs(out: Path) -> list[tuple]:
    recs = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    return [(r["id"], r["status"], r["chosen"] and r["chosen"]["seed"], r["rejected"] and r["rejected"]["seed"])
            for r in recs]


def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path):
    cfg = _setup(tmp_path)
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(_cmd(cfg, full), env=_env(), check=True, capture_output=True, timeout=600)

    proc = subprocess.Popen(_cmd(cfg, killed), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = killed / "records.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:
        if records.exists() and records.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = records.read_bytes().count(b"\n")
    assert 3 <= done_at_kill < 12, done_at_kill
    with records.open("ab") as f:  # and as if the kill had landed in the middle of a write
        f.write(b'{"id": "p11", "status": "ke')

    res = subprocess.run(_cmd(cfg, killed), env=_env(), check=True, capture_output=True, text=True, timeout=600)
    summary = json.loads(res.stdout[res.stdout.index("{"):])
    assert summary["done_before"] == done_at_kill

    got, want = _pairs(killed), _pairs(full)
    assert len(got) == 12 and len({g[0] for g in got}) == 12  # none lost, none duplicated
    assert sorted(got) == sorted(want)
    assert (killed / "diffusion_dpo.jsonl").read_text().replace(str(killed), "") == \
        (full / "diffusion_dpo.jsonl").read_text().replace(str(full), "")
