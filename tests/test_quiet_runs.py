"""Silence at the cause (issue 16, defect 11): a video run passes the video processor's per-frame cap explicitly
(and records it in the media policy), `--no-progress` hides the model loading bars, and the package metadata
uses an SPDX license string."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_a_video_run_with_no_progress_prints_only_its_result(tiny_model_dir, video_file):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-m", "unireward", "score", "--model", tiny_model_dir("qwen2-vl"),
                           "--task", "video-gen/point", "--prompt", "a bar moving right", str(video_file),
                           "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    result = json.loads(line)
    assert result["status"] == "ok" and result["media_policy"]["cap_pixels_per_frame"] is False
    assert "cap_pixels_per_frame" not in proc.stderr  # transformers' warning: the setting is passed explicitly
    assert "Loading weights" not in proc.stderr  # transformers' loading bar
    assert proc.stderr.strip() == ""


def test_the_package_metadata_raises_no_deprecation_warning(monkeypatch):
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    monkeypatch.chdir(ROOT)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), str(ROOT / "pyproject.toml"))
    assert [str(w.message) for w in caught] == []
    assert dist.metadata.license_expression == "Apache-2.0"
    assert "openai" in dist.metadata.provides_extras
