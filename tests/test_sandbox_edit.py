"""Image editing in the sandbox: instructions, the oracle's edit score, edit samples (labels, split rule,
round trips through the unified format, the benchmark loader and the judge), and training on them."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unireward.config import PRESETS
from unireward.data.schema import Sample, read_samples
from unireward.sandbox import oracle
from unireward.sandbox.data import EDIT_KINDS, EDIT_TASKS, _Ctx, build_samples, combos, edit_candidate, \
    generate_dataset
from unireward.sandbox.world import IMAGE_ATTRIBUTES, VALUES, Obj, Scene, edit_instruction, sample_scene
from unireward.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
EDIT_PRESET = PRESETS / "sandbox" / "edit.yaml"
SMOKE = PRESETS / "sandbox" / "smoke.yaml"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("edit-world")
    paths = generate_dataset(out, {t: 80 for t in EDIT_TASKS}, seed=1, image_size=32, rationale=True,
                             n_eval={t: 60 for t in EDIT_TASKS},
                             generated_share=0.3)
    return {split: list(read_samples(p)) for split, p in paths.items()}, paths


# -- instructions and the oracle ------------------------------------------------------------------------------------
def test_instructions_parse_back_and_name_one_change():
    scene = Scene((Obj("red", "circle", "top left"),))
    assert edit_instruction(scene, "colour", "blue") == "Make the red circle blue."
    assert edit_instruction(scene, "shape", "square") == "Turn the red circle into a square."
    assert edit_instruction(scene, "position", "bottom right") == "Move the red circle to the bottom right."
    for attr in IMAGE_ATTRIBUTES:
        for value in VALUES[attr]:
            if value == scene.facts()[attr]:
                with pytest.raises(ValueError, match="not another"):  # an edit changes something
                    edit_instruction(scene, attr, value)
                continue
            parsed = oracle.parse_instruction(edit_instruction(scene, attr, value))
            assert parsed == {"attribute": attr, "value": value, "colour": "red", "shape": "circle"}
    assert oracle.parse_instruction("Make the red circle purple.") is None
    assert oracle.parse_instruction("a red circle at the top left") is None
    with pytest.raises(ValueError, match="not a sandbox edit instruction"):
        oracle.edit_score("Paint it.", scene, scene)


def test_every_candidate_kind_scores_as_it_must():
    rng = np.random.default_rng(0)
    want = {"faithful": {1.0}, "over-edited": {0.75, 0.5}, "untouched": {0.5}, "wrong-attribute": {0.25, 0.0}}
    seen = {k: set() for k in EDIT_KINDS}
    for i in range(300):
        ctx = _Ctx(np.random.default_rng(i), "heldout", "image-edit/pair", 32, 32, 8, True, "mp4")
        source = sample_scene(rng)
        attr = IMAGE_ATTRIBUTES[i % 3]
        value = next(v for v in VALUES[attr] if v != source.facts()[attr])
        ins = edit_instruction(source, attr, value)
        for kind in EDIT_KINDS:
            cand = edit_candidate(ctx, source, attr, value, kind)
            changed = {a for a in IMAGE_ATTRIBUTES if cand.facts()[a] != source.facts()[a]}
            assert (attr in changed) == (kind in ("faithful", "over-edited"))  # the instructed change, or not
            others = len(changed - {attr})  # the other attributes changed: none, or one or both
            assert others == 0 if kind in ("faithful", "untouched") else others in (1, 2)
            score = oracle.edit_score(ins, source, cand)
            assert score in want[kind], (kind, score)
            seen[kind].add(score)
            hits = oracle.edit_check(ins, source, cand)
            tally = sum(oracle.edit_weights(hits)[a] for a, ok in hits.items() if ok)
            assert tally == 4 * score  # the checklist's tally is the score in quarters
    assert seen == want  # both variants of over-edited and wrong-attribute occur


def test_oracle_reads_edits_from_pixels_like_the_labels():
    from unireward.judge import RewardModel
    from unireward.sandbox.oracle_judge import OracleBackend

    samples, jobs = build_samples("image-edit/pair", 40, "val", seed=4, image_size=32)
    points, point_jobs = build_samples("image-edit/point", 40, "val", seed=4, image_size=32)
    arrays = {p: Image.fromarray(a) for p, a, _ in jobs + point_jobs}
    rm = RewardModel(OracleBackend(), method="generate")
    for s in samples:
        src, a, b = (arrays[m] for m in s.media)
        assert rm.rank(s.prompt, a, b, task="image-edit/pair", media=src).winner == s.label
    for s in points:
        src, a = (arrays[m] for m in s.media)
        assert rm.score(s.prompt, a, task="image-edit/point", media=src).score == s.label


# -- samples --------------------------------------------------------------------------------------------------------
def test_edit_samples_carry_oracle_labels_and_their_checklists(world):
    samples, paths = world
    root = paths["train"].parent
    pair_kinds, point_labels = Counter(), Counter()
    for s in samples["train"] + samples["heldout"]:
        Sample.from_dict(json.loads(s.to_json()))
        scores = [oracle.edit_score(s.prompt, s.meta["source"], f) for f in s.meta["facts"]]
        assert scores == s.meta["scores"]
        if s.task.endswith("/pair"):
            assert s.label == (1 if scores[0] > scores[1] else 2 if scores[1] > scores[0] else "tie")
            pair_kinds[tuple(sorted(s.meta["kinds"]))] += 1
        else:
            assert s.label == 1 + round(4 * scores[0])
            point_labels[s.label] += 1
        verdict = get_task(s.task).parse(s.target, strict=True)
        assert (verdict.winner if s.task.endswith("/pair") else verdict.score) == s.label
        assert s.target.startswith(s.rationale)
        first = s.rationale.splitlines()[0]
        assert first.startswith(f"{s.meta['attribute']} {s.meta['source'][s.meta['attribute']]} to {s.meta['value']}:")
        if s.task.endswith("/pair"):
            tally = s.rationale.splitlines()[-1]
            assert tally == f"Tally: Image 1 {round(4 * scores[0])}, Image 2 {round(4 * scores[1])}"
        # media 0 is the source, as rendered; crisp candidates show their recorded facts; untouched is the source
        pix = [np.asarray(Image.open(p).convert("RGB")) for p in s.media_paths(root)]
        assert len(pix) == 1 + get_task(s.task).num_candidates
        assert oracle.read_image(pix[0]) == s.meta["source"]
        for k, (kind, facts) in enumerate(zip(s.meta["kinds"], s.meta["facts"])):
            assert oracle.read_image(pix[k + 1]) == facts
            if kind == "untouched":
                assert np.array_equal(pix[k + 1], pix[0])
    assert {1, 2, "tie"} <= {s.label for s in samples["train"] if s.task == "image-edit/pair"}
    assert len(pair_kinds) >= 8  # decisive pairs of different kinds and ties of one kind twice
    assert set(point_labels) >= {2, 3, 4, 5}
    looks = [s for s in samples["train"] if s.meta["generated"]]
    assert 0.1 < len(looks) / len(samples["train"]) < 0.5  # the generated-looks share reaches edits too


def test_heldout_combinations_never_reach_training_edits(world):
    samples, _ = world
    for split in ("train", "val"):
        for s in samples[split]:
            shown = [s.meta["source"], oracle.edit_targets(s.prompt, s.meta["source"]), *s.meta["facts"]]
            assert not any(combos(f) for f in shown), s.id
    for s in samples["heldout"]:  # every held-out edit asks for a held-out scene
        result = oracle.edit_targets(s.prompt, s.meta["source"])
        assert combos(result), s.id


def test_records_round_trip_through_the_benchmark_loader_and_the_training_chat(world):
    from unireward.bench.loaders import load_samples
    from unireward.judging.spec import resolve_spec
    from unireward.train.collate import sample_chat

    samples, paths = world
    bench = load_samples(paths["heldout"])
    by_id = {s.id: s for s in samples["heldout"]}
    assert {it.task for it in bench.items} == set(EDIT_TASKS)
    root = paths["heldout"].parent
    for it in bench.items:
        s = by_id[it.id]
        media = s.media_paths(root)
        got = it.fetch()
        assert got == ((media[1], media[2], media[0]) if s.task.endswith("/pair") else (media[1], media[0]))
        assert it.gold == s.label
        chat = sample_chat(s, root, resolve_spec(""))  # the source, then the candidates, as the judge renders them
        shown = [np.asarray(p) for p in chat.parts if not isinstance(p, str)]
        assert len(shown) == len(media)
        for img, path in zip(shown, media):
            assert np.array_equal(img, np.asarray(Image.open(path).convert("RGB")))
        assert f"Instruction: {s.prompt}" in "".join(p for p in chat.parts if isinstance(p, str))


def test_sandbox_benchmark_judges_edit_tasks(world, tmp_path):
    from unireward.bench import BenchConfig, run_bench
    from unireward.judge import RewardModel
    from unireward.sandbox.oracle_judge import OracleBackend

    _, paths = world
    cfg = BenchConfig("sandbox", data=str(paths["heldout"].parent), protocol="clean", out=str(tmp_path / "b"),
                      progress=False)
    res = run_bench(cfg, judge=RewardModel(OracleBackend()))
    tasks = res["groups"]["task"]
    assert tasks["image-edit/pair"]["n"] == 60 and tasks["image-edit/pair"]["accuracy"] == 1.0  # exact, both orders
    assert tasks["image-edit/point"]["spearman"] == pytest.approx(1.0) and tasks["image-edit/point"]["exact"] == 1.0


# -- training -------------------------------------------------------------------------------------------------------
def test_tiny_sft_step_on_edit_samples(tmp_path, world):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    from unireward.train.sft import SFTRecipeConfig, run_sft

    _, paths = world
    out = tmp_path / "sft"
    cfg = SFTRecipeConfig(data=[str(paths["val"])], output_dir=str(out), model="tiny:qwen2-vl",
                          tiny_max_pixels=32 * 32, max_steps=2, batch_size=4, lr=1e-2, warmup=0, logging_steps=1,
                          save_steps=100, progress=False, seed=0, num_threads=1)
    result = run_sft(cfg)
    assert result.global_step == 2 and math.isfinite(result.train_loss)
    before, after = load_file(str(out / "base_model" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert sum(not torch.equal(before[k], after[k]) for k in before) > len(before) // 2


def test_ladder_trains_edits_from_a_judge_and_evaluates_them_before_and_after(tmp_path):
    pytest.importorskip("torch")
    from unireward.sandbox.ladder import config_from_dict, run_from_config, ship, shipped_record

    stage = ("stages=[{name: edit, kind: judge, examples: 8, lr: 1.0e-3, "
             "tasks: {image-edit/pair: 1, image-edit/point: 1}}]")
    first = run_from_config(SMOKE, [f"out_dir={tmp_path / 'a'}", "final_eval_n=0", stage])
    info = first["stages"][0]
    assert info["curve"] and all(math.isfinite(p["loss"]) for p in info["curve"])
    assert info["params_moved"] == info["params_trainable"] > 0
    shipped = ship(first, tmp_path / "shipped")
    second = run_from_config(SMOKE, [f"out_dir={tmp_path / 'b'}", f"init={shipped}", "eval_before=true",
                                     "final_eval_n=1", stage.replace("name: edit", "name: more")])
    assert not (tmp_path / "b" / "base").exists()  # started from the given judge
    for ev in (second["eval_before"], second["eval"]):
        assert set(EDIT_TASKS) <= set(ev) and "acc_order2" in ev["image-edit/pair"]
        assert "spearman" in ev["image-edit/point"]
    # shipped again, its record is the whole recipe from scratch: the first ladder's stages, then the second's
    record = shipped_record(ship(second, tmp_path / "again"))
    assert [st["name"] for st in record["stages"]] == ["edit", "more"] and record["eval_before"]
    assert [st.name for st in config_from_dict(record["config"]).stages] == ["edit", "more"]
    assert config_from_dict(record["config"]).init is None
    assert record["train_time_s"] == first["train_time_s"] + second["train_time_s"]


def test_edit_preset_loads():
    from unireward.sandbox.ladder import LadderConfig, eval_tasks
    from unireward.sandbox.data import TASKS
    from unireward.config import load_config

    cfg = load_config(LadderConfig, EDIT_PRESET)
    assert cfg.init and (ROOT / cfg.init / "config.json").is_file() and cfg.eval_before
    assert cfg.threads == 1 and cfg.final_eval_n >= 100
    (stage,) = cfg.stages
    weights = stage.tasks
    edit = sum(weights[t] for t in EDIT_TASKS) / sum(weights.values())
    assert 0.3 < edit < 0.7 and all(weights.get(t, 0) > 0 for t in TASKS)  # a replay share of all eight
    assert eval_tasks(cfg) == TASKS + EDIT_TASKS
    assert "python -m unireward.sandbox.ladder --config sandbox/edit" in EDIT_PRESET.read_text()
