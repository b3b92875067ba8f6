"""The demo's HTML report: written from real images, opened in headless Chromium when it is installed."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from unireward.sandbox.report import write_report
from unireward.sandbox.world import Obj, Scene, render_image


def _report(tmp_path):
    a = render_image(Scene((Obj("red", "circle", "top left"),)), size=16)
    b = render_image(Scene((Obj("blue", "square", "center"),)), size=16)
    return write_report(
        tmp_path / "report.html", summary="test",
        judge_table=[{"task": "image-gen/pair", "metric": "accuracy", "value": 0.97}],
        pairs=[{"prompt": "a red circle at the top left", "chosen": a, "rejected": b,
                "verdicts": ["Final Judgment: Image 1 is better than Image 2."],
                "scores": {"chosen": 5, "rejected": 2}}],
        before_after={"a red circle at the top left": [b, a]},
        gains={"generator": {"base": 0.3, "control": 0.35, "dpo": 0.5}})


def test_report_contains_every_section(tmp_path):
    text = _report(tmp_path).read_text()
    for needle in ("image-gen/pair", "Constructed preference pairs", "before and after", "id='gains'",
                   "data:image/png;base64,", "0.970"):
        assert needle in text


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="headless Chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    page = _report(tmp_path)
    shot = tmp_path / "shot.png"
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1100,1400",
                    page.as_uri()], check=True, timeout=120, capture_output=True)
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[0] > 500 and img.std() > 10  # something was drawn, not a blank page
