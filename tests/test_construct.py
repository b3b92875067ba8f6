"""Preference construction: strategies (pure), the crash-safe writer, end-to-end runs, exports, samplers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from unireward.construct.candidates import PromptItem, candidate_seed
from unireward.construct.strategies import Verdict, make_pairs, select, split_verdicts


# ---------------------------------------------------------------- strategies


def test_unparsed_and_tied_verdicts_never_default_to_a_candidate():
    verdicts = [Verdict(0, 1, None), Verdict(2, 3, "tie"), Verdict(4, 5, 2)]
    winners, losers, skipped = split_verdicts(verdicts)
    assert (winners, losers, skipped) == ([5], [4], [0, 1])
    sel = select("pair-then-point", 6, verdicts, [9, 9, 9, 9, 1.0, 7.0])
    assert (sel.status, sel.chosen, sel.rejected) == ("kept", 5, 4)
    assert sel.skipped_pairs == [0, 1]
    none = select("pair-then-point", 4, [Verdict(0, 1, None), Verdict(2, 3, "tie")], [5, 1, 5, 1])
    assert none.status == "dropped" and none.chosen is None and "no decisive pair" in none.reason


def test_pair_then_point_takes_best_winner_worst_loser_and_compares_numbers():
    verdicts = [Verdict(0, 1, 1), Verdict(2, 3, 2), Verdict(4, 5, 1)]
    # "10" > "9" as numbers (a string comparison would get this wrong)
    scores = [9.0, 2.0, 1.0, 10.0, 3.0, 5.0]
    sel = select("pair-then-point", 6, verdicts, scores)
    assert sel.winners == [0, 3, 4] and sel.losers == [1, 2, 5]
    assert (sel.chosen, sel.rejected) == (3, 2)


def test_pair_then_point_drops_when_chosen_not_above_rejected():
    sel = select("pair-then-point", 4, [Verdict(0, 1, 1), Verdict(2, 3, 1)], [3.0, 4.0, 3.0, 5.0])
    assert sel.status == "dropped" and (sel.chosen, sel.rejected) == (0, 1)
    assert "<=" in sel.reason


def test_unscored_candidates_are_left_out_not_zero():
    sel = select("pair-then-point", 4, [Verdict(0, 1, 1), Verdict(2, 3, 1)], [None, 2.0, 4.0, None])
    assert (sel.status, sel.chosen, sel.rejected) == ("kept", 2, 1)
    gone = select("pair-then-point", 2, [Verdict(0, 1, 1)], [5.0, None])
    assert gone.status == "dropped" and "no scored loser" in gone.reason


def test_point_only_pair_only_random():
    sel = select("point-only", 4, [], [2.0, 5.0, 1.0, 5.0])
    assert (sel.chosen, sel.rejected) == (1, 2)  # ties go to the lower index
    assert select("point-only", 3, [], [3.0, 3.0, 3.0]).status == "dropped"
    sure = [Verdict(0, 1, 1, p_first=0.6), Verdict(2, 3, 2, p_first=0.05), Verdict(4, 5, None)]
    sel = select("pair-only", 6, sure, [])
    assert (sel.chosen, sel.rejected) == (3, 2)
    sel = select("random", 10, rng=np.random.default_rng(0))
    assert sel.status == "kept" and sel.chosen != sel.rejected


def test_pairs_are_disjoint_and_seeds_depend_on_prompt_id_only():
    pairs = make_pairs(10, np.random.default_rng(1))
    flat = [i for p in pairs for i in p]
    assert len(pairs) == 5 and sorted(flat) == list(range(10))
    assert len(make_pairs(5, np.random.default_rng(1))) == 2
    assert candidate_seed(0, "a", 3) == candidate_seed(0, "a", 3) != candidate_seed(0, "b", 3)


# ---------------------------------------------------------------- writer


def test_writer_cuts_a_torn_tail_and_refuses_duplicates(tmp_path):
    from unireward.data.records import RecordWriter, read_records
    from unireward.errors import DataError

    path = tmp_path / "records.jsonl"
    with RecordWriter(path) as w:
        w.append({"id": "a", "status": "kept"})
        w.append({"id": "b", "status": "dropped"})
        with pytest.raises(DataError, match="already recorded"):
            w.append({"id": "a", "status": "kept"})
    with path.open("ab") as f:
        f.write(b'{"id": "c", "sta')  # killed mid-write
    w = RecordWriter(path)
    assert w.done == {"a": "kept", "b": "dropped"} and w.recovered_bytes > 0
    w.append({"id": "c", "status": "kept"})
    w.close()
    assert [r["id"] for r in read_records(path)] == ["a", "b", "c"]


def test_writer_refuses_a_corrupt_middle(tmp_path):
    from unireward.data.records import RecordWriter
    from unireward.errors import DataError

    path = tmp_path / "records.jsonl"
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(DataError, match=":2: not valid JSON"):
        RecordWriter(path)


# ---------------------------------------------------------------- end to end with a fast world sampler


class WorldSampler:
    """Renders the caption's scene with 0-2 attributes changed, drawn from the candidate's seed (no torch)."""

    kind = "image"

    def describe(self):
        return {"sampler": "world-test"}

    def sample(self, prompts, seeds):
        from PIL import Image

        from unireward.sandbox.data import perturb
        from unireward.sandbox.oracle import parse_caption
        from unireward.sandbox.world import Obj, Scene, render_image

        out = []
        for p, ss in zip(prompts, seeds):
            f = parse_caption(p.prompt)
            scene = Scene((Obj(f["colour"], f["shape"], f["position"]),))
            row = []
            for s in ss:
                rng = np.random.default_rng(s)
                shown = perturb(scene, int(rng.integers(0, 3)), ("colour", "shape", "position"), rng, "heldout")
                row.append(Image.fromarray(render_image(shown, 32, int(s))))
            out.append(row)
        return out


def _items(n=6):
    from unireward.sandbox.world import sample_scene

    rng = np.random.default_rng(0)
    return [PromptItem(f"p/{i}", sample_scene(rng).caption()) for i in range(n)]


def oracle_judge():
    from unireward.judge import RewardModel
    from unireward.sandbox.oracle_judge import OracleBackend

    return RewardModel(OracleBackend())


def test_construct_records_full_provenance_and_exports_for_diffusion_dpo(tmp_path):
    from unireward.construct.export import export_records
    from unireward.construct.run import construct
    from unireward.data.records import read_records
    from unireward.sandbox.oracle import score_media
    from unireward.train.diffusion_dpo import PreferencePairs

    res = construct(_items(), WorldSampler(), oracle_judge(), tmp_path, num_candidates=6, chunk_size=4)
    records = list(read_records(res.records_path))
    assert [r["id"] for r in records] == [f"p/{i}" for i in range(6)] and res.kept + res.dropped == 6
    kept = [r for r in records if r["status"] == "kept"]
    assert kept
    for r in kept:
        assert len(r["candidates"]) == 6 and all("seed" in c and (tmp_path / c["path"]).is_file()
                                                 for c in r["candidates"])
        assert len(r["pairs"]) == 3 and len(r["scores"]) == 6
        assert all(p["raw"] and p["probs"] for p in r["pairs"])
        assert r["chosen"]["index"] in r["winners"] and r["rejected"]["index"] in r["losers"]
        assert r["chosen"]["score"] > r["rejected"]["score"]
        prov = r["provenance"]
        assert prov["pair_task"]["version"] >= 1 and prov["point_task"]["template_hash"]
        assert prov["judge"]["backend"] == "sandbox-oracle" and prov["policy"]["sampler"] == "world-test"
        from PIL import Image

        pix = [np.asarray(Image.open(tmp_path / r[s]["path"])) for s in ("chosen", "rejected")]
        assert score_media(r["prompt"], pix[0]) > score_media(r["prompt"], pix[1])
    exports = export_records(res.records_path, tmp_path)
    pairs = PreferencePairs(exports["diffusion-dpo"], resolution=32)
    assert len(pairs) == len(kept)
    item = pairs[0]
    assert item["chosen"].shape == (3, 32, 32) and item["caption"] == kept[0]["prompt"]

    # resuming a finished run does nothing and duplicates nothing
    again = construct(_items(), WorldSampler(), oracle_judge(), tmp_path, num_candidates=6, chunk_size=2)
    assert again.done_before == 6 and len(list(read_records(res.records_path))) == 6


@pytest.mark.parametrize("strategy", ["pair-only", "point-only", "random"])
def test_other_strategies_run(tmp_path, strategy):
    from unireward.construct.run import construct
    from unireward.data.records import read_records

    judge = None if strategy == "random" else oracle_judge()
    res = construct(_items(4), WorldSampler(), judge, tmp_path, strategy=strategy, num_candidates=4)
    records = list(read_records(res.records_path))
    assert len(records) == 4 and all(r["provenance"]["strategy"] == strategy for r in records)
    if strategy == "random":
        assert all(r["status"] == "kept" and not r["pairs"] and not r["scores"] for r in records)


def test_unparsed_judge_output_drops_the_prompt_and_is_recorded(tmp_path):
    from unireward.backends.scripted import ScriptedBackend
    from unireward.construct.run import construct
    from unireward.data.records import read_records
    from unireward.judge import RewardModel

    judge = RewardModel(ScriptedBackend(lambda x: "I cannot decide."))
    res = construct(_items(2), WorldSampler(), judge, tmp_path, num_candidates=4)
    for r in read_records(res.records_path):
        assert r["status"] == "dropped" and r["chosen"] is None
        assert all(p["winner"] is None and p["status"] == "unparsed" for p in r["pairs"])
        assert r["skipped_pairs"] == [0, 1] and r["pairs"][0]["raw"] == ["I cannot decide."]


def test_vlm_sampler_is_seeded_and_understanding_exports_to_trl(tmp_path, tiny_model_dir, images):
    from unireward.backends.scripted import ScriptedBackend
    from unireward.construct.candidates import VLMSampler
    from unireward.construct.export import export_records
    from unireward.construct.run import construct
    from unireward.judge import RewardModel

    sampler = VLMSampler.from_pretrained(tiny_model_dir("qwen2-vl"), max_new_tokens=6)
    images[0].save(tmp_path / "ctx.png")
    item = PromptItem("q1", "What colour is the shape?", str(tmp_path / "ctx.png"))
    a = sampler.sample([item], [[1, 2, 3]])[0]
    assert a == sampler.sample([item], [[1, 2, 3]])[0] and len(a) == 3

    def respond(x):  # prefer the longer answer; score by length
        text = "\n".join(p for p in x.parts if isinstance(p, str))
        if "Answer 1:" in text:
            a1 = text.split("Answer 1: ")[1].split("\n")[0]
            a2 = text.split("Answer 2: ")[1].split("\n")[0]
            w = 1 if len(a1) > len(a2) else 2 if len(a2) > len(a1) else "tie"
            return "Final Judgment: " + ("Both answers are equally good." if w == "tie"
                                         else f"Answer {w} is better than Answer {3 - w}.")
        ans = text.split("Answer: ")[1].split("\n")[0]
        return f"Final Score: {min(10, 1 + len(ans))}"

    judge = RewardModel(ScriptedBackend(respond))
    res = construct([item], sampler, judge, tmp_path / "out", task="image-und", num_candidates=6)
    rec = json.loads((tmp_path / "out" / "records.jsonl").read_text().splitlines()[0])
    assert [c["text"] for c in rec["candidates"]][:3] == [sampler.sample([item], [[s]])[0][0]
                                                          for s in (c["seed"] for c in rec["candidates"][:3])]
    if res.kept:
        row = json.loads(export_records(res.records_path, tmp_path / "out")["trl"].read_text().splitlines()[0])
        assert row["images"] == [str(tmp_path / "ctx.png")] and row["chosen"][0]["role"] == "assistant"
        assert row["prompt"][0]["content"][0] == {"type": "image"}


def test_construct_cli_print_config(tmp_path, capsys):
    from unireward.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("prompts: p.jsonl\njudge: oracle\npolicy_model: gen\n")
    assert main(["construct", "--config", str(cfg), "--print-config", "num_candidates=6"]) == 0
    out = capsys.readouterr().out
    assert "num_candidates: 6" in out and "strategy: pair-then-point" in out


def test_presets_load():
    from unireward.config import PRESETS, load_config
    from unireward.construct.run import ConstructConfig

    presets = sorted((PRESETS / "construct").glob("*.yaml"))
    assert presets
    for p in presets:
        load_config(ConstructConfig, p)
