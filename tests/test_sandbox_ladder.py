"""The sandbox ladder at smoke size: stages run end to end, train, cache, and save judges that load."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from unireward.config import PRESETS, load_config  # noqa: E402
from unireward.sandbox.ladder import LadderConfig, StageConfig, run_from_config, train_ladder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMOKE = PRESETS / "sandbox" / "smoke.yaml"


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    out = tmp_path_factory.mktemp("ladder")
    report = run_from_config(SMOKE, [f"out_dir={out}", "final_eval_n=0"])
    return out, report


def test_presets_load():
    for path in sorted((PRESETS / "sandbox").glob("*.yaml")):
        cfg = load_config(LadderConfig, path)
        assert cfg.stages and all(isinstance(s, StageConfig) for s in cfg.stages), path


def test_stages_train(ladder):
    out, report = ladder
    assert [s["kind"] for s in report["stages"]] == ["caption", "judge"]
    for s in report["stages"]:
        assert s["curve"] and all(math.isfinite(p["loss"]) for p in s["curve"])
        assert s["params_trainable"] > 0 and s["params_moved"] == s["params_trainable"]
        assert (out / f"{report['stages'].index(s) + 1}-{s['name']}" / "stage.json").is_file()
    assert json.loads((out / "ladder.json").read_text())["final_model"] == report["final_model"]


def test_second_run_is_cached(ladder):
    out, first = ladder
    again = run_from_config(SMOKE, [f"out_dir={out}", "final_eval_n=0"])
    assert all(s["cached"] for s in again["stages"])
    assert again["final_model"] == first["final_model"]


def test_changed_stage_retrains_from_there(tmp_path, ladder):
    out, _ = ladder
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    cfg = load_config(LadderConfig, SMOKE, [f"out_dir={copy}", "final_eval_n=0"])
    cfg.stages[1].lr = 5e-4
    report = train_ladder(cfg)
    assert [s["cached"] for s in report["stages"]] == [True, False]


def test_checkpoint_loads_as_judge(ladder, tmp_path):
    from unireward.judge import RewardModel
    from unireward.sandbox.data import generate_dataset
    from unireward.data.schema import read_samples

    _, report = ladder
    rm = RewardModel.load(report["final_model"], device="cpu", dtype="float32", method="generate",
                          max_new_tokens=8)
    paths = generate_dataset(tmp_path / "world", {"image-gen/pair": 2, "image-gen/point": 2}, image_size=28,
                             n_eval=1)
    sample = next(s for s in read_samples(paths["heldout"]) if s.task == "image-gen/pair")
    a, b = sample.media_paths(paths["heldout"].parent)
    res = rm.rank(sample.prompt, a, b, task="image-gen/pair")
    assert res.status in ("ok", "unparsed")
    loaded = RewardModel.load(report["final_model"], dtype="float32")  # its unireward.json: a checklist first
    assert loaded.method == "auto" and loaded.reasoning is True
    probs = RewardModel.load(report["final_model"], device="cpu", dtype="float32", method="probs",
                             max_new_tokens=48).rank(sample.prompt, a, b, task="image-gen/pair")
    assert probs.method == "think+probs"  # read after its checklist, never right after the prompt
    if probs.status == "ok":
        assert abs(sum(probs.probs.values()) - 1) < 1e-5
    else:  # a smoke-sized judge may not reach "Final Judgment: " in 48 tokens
        assert probs.probs is None and "did not reach" in probs.reason


def test_captions_keep_the_split():
    from unireward.sandbox import oracle
    from unireward.sandbox.data import combos
    from unireward.sandbox.ladder_data import captioning_examples

    for video in (False, True):
        for e in captioning_examples(200, seed=3, image_size=28, video=video, physics=video):
            assert not combos(oracle.parse_caption(e["completion"].split(",")[0])), e["completion"]
        held = captioning_examples(20, seed=3, split="heldout", image_size=28, video=video)
        assert all(combos(oracle.parse_caption(e["completion"].split(",")[0])) for e in held)


def test_ship_keeps_the_judge_and_the_recipe_that_retrains_it(ladder, tmp_path):
    from unireward.judge import RewardModel
    from unireward.sandbox.ladder import config_from_dict, ship, shipped_record

    out, report = ladder
    dest = ship(report, tmp_path / "judge")
    record = shipped_record(dest)
    assert record is not None and not (dest / "stage.json").exists()
    assert record["train_time_s"] == report["train_time_s"] and len(record["stages"]) == 2
    again = config_from_dict(record["config"], out_dir=str(tmp_path / "again"))
    assert again.stages == load_config(LadderConfig, SMOKE, [f"out_dir={out}", "final_eval_n=0"]).stages
    RewardModel.load(str(dest), dtype="float32")
    assert shipped_record(tmp_path / "nothing") is None
