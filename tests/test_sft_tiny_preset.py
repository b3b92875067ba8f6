"""`unireward train sft --config sft/tiny` from a fresh checkout (issue 16, defects 1 and 11): the
recipe draws its own data, never touches another command's world, and our trainer config raises no deprecation
warning."""

from __future__ import annotations

import json
import warnings

import pytest

pytest.importorskip("trl")

from unireward.cli import main  # noqa: E402
from unireward.config import PRESETS  # noqa: E402
from unireward.sandbox.data import ALL_TASKS  # noqa: E402

PRESET = str(PRESETS / "sft" / "tiny.yaml")


def test_the_tiny_preset_makes_its_own_data_and_leaves_other_worlds_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bench = tmp_path / "runs" / "world"  # the world `bench sandbox` draws: held-out only, 800 lines
    bench.mkdir(parents=True)
    (bench / "heldout.jsonl").write_text("{}\n" * 800)
    (bench / "train.jsonl").write_text("")
    (bench / "manifest.json").write_text(json.dumps({"seed": 0, "image_size": 56, "video_frames": 8,
                                                     "rationale": False, "train": {"image-gen/pair": 0}}))
    before = {p.name: p.read_bytes() for p in bench.iterdir()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["train", "sft", "--config", PRESET, "max_steps=2", "save_steps=2", "logging_steps=1",
                     "progress=false"])
    assert code == 0, capsys.readouterr()
    assert (tmp_path / "runs" / "judge" / "config.json").is_file()
    # judged with the templates it was trained on
    assert json.loads((tmp_path / "runs" / "judge" / "unireward.json").read_text())["family"] == "unireward"
    world = tmp_path / "runs" / "sft-world"
    # every sandbox task, edits included
    assert len((world / "train.jsonl").read_text().splitlines()) == 50 * len(ALL_TASKS)
    assert {p.name: p.read_bytes() for p in bench.iterdir()} == before  # the benchmark's world is untouched
    deprecated = [str(w.message) for w in caught if "checkpointing" in str(w.message)]
    assert deprecated == []
    # pointed at a folder holding another world, the recipe refuses instead of overwriting it
    code = main(["train", "sft", "--config", PRESET, "max_steps=1", "progress=false", "output_dir=runs/j2",
                 "data=[{sandbox_world: runs/world, n_per_task: 50}]"])
    assert code == 1 and "holds another world" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in bench.iterdir()} == before
