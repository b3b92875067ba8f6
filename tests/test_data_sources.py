"""Each dataset converter on its fixture (tests/fixtures/datasets/<source>/): counts, labels, targets that parse
back to the labels, media that exist, and clear errors for bad input."""

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from unireward.data.schema import read_samples, write_samples
from unireward.data.sources import SOURCES, convert_source, embeds_media, llava_critic, options
from unireward.errors import ConfigError, DataError
from unireward.tasks import get_task

FIX = Path(__file__).parent / "fixtures" / "datasets"

# source -> expected {task: count}
EXPECTED = {
    "hpd": {"image-gen/pair": 3},
    "evalmuse": {"image-gen/point": 6, "image-gen/pair": 1},
    "oip": {"image-gen/pair": 3},
    "pickapic": {"image-gen/pair": 3},
    "videodpo": {"video-gen/pair": 3},
    "lift_hra": {"video-gen/point": 3},
    "videofeedback": {"video-gen/point": 4},
    "llava_critic": {"image-und/pair": 5, "image-und/point": 3},
    "sharegptvideo_dpo": {"video-und/pair": 2, "video-und/point": 4},
}


def run(name, tmp_path, **opts):
    out = tmp_path / name
    return list(convert_source(name, FIX / name, out if embeds_media(name) else None, **opts)), out


def parsed_label(sample):
    verdict = get_task(sample.task).parse(sample.target, strict=not sample.rationale)
    return verdict.winner if get_task(sample.task).is_pair else verdict.score


def media_files(sample, root):
    for m in sample.media_paths(root):
        yield from (m if isinstance(m, list) else [m])


def test_every_source_has_a_fixture_and_expectation():
    assert set(SOURCES) == set(EXPECTED)
    assert all((FIX / n).is_dir() for n in SOURCES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_converter_on_fixture(name, tmp_path):
    samples, out = run(name, tmp_path)
    assert dict(Counter(s.task for s in samples)) == EXPECTED[name]
    assert len({s.id for s in samples}) == len(samples)
    for s in samples:
        assert s.source == name and s.target
        assert parsed_label(s) == s.label, (s.id, s.target)
        for f in media_files(s, out):
            assert Path(f).is_file(), f
    # the records round-trip through the JSONL schema
    write_samples(tmp_path / "x.jsonl", samples)
    assert [s.id for s in read_samples(tmp_path / "x.jsonl")] == [s.id for s in samples]


def test_hpd_more_votes_wins_and_ties(tmp_path):
    samples, _ = run("hpd", tmp_path)
    by_prompt = {s.prompt: s for s in samples}
    fox = by_prompt["a red fox in snow"]  # votes [1, 0]: 00000.jpg wins wherever it was placed
    assert fox.media[fox.label - 1].endswith("00000.jpg")
    assert "two cats on a sofa" not in by_prompt  # equal votes dropped by default
    ties, _ = run("hpd", tmp_path, ties="keep")
    assert [s.label for s in ties if s.prompt == "two cats on a sofa"] == ["tie"]
    test, _ = run("hpd", tmp_path, split="test")  # rank format: best rank (t1) vs worst (t2)
    (t,) = test
    assert t.media[t.label - 1].endswith("t1.jpg") and t.media[2 - t.label].endswith("t2.jpg")


def test_pair_order_is_balanced_and_source_order_kept(tmp_path):
    hashed = [s.label for name in ("hpd", "oip", "videodpo") for s in run(name, tmp_path)[0]]
    assert set(hashed) == {1, 2}
    kept, _ = run("videodpo", tmp_path, order="source")
    assert all(s.label == 1 and "winvideos" in s.media[0] for s in kept)


def test_evalmuse_points_pairs_and_elements(tmp_path):
    samples, _ = run("evalmuse", tmp_path)
    points = [s for s in samples if s.task == "image-gen/point"]
    best = next(s for s in points if s.meta["ratings"] == [5, 4, 5])
    assert best.label == 5 and best.meta["mean_rating"] == pytest.approx(14 / 3, abs=1e-3)
    assert best.dimensions == {"alignment": 5}
    assert best.meta["elements"]["dog (animal)"] == {"score": pytest.approx(0.6667, abs=1e-3), "present": True}
    assert best.meta["elements"]["hat (object)"]["present"] is False
    (pair,) = [s for s in samples if s.task == "image-gen/pair"]
    assert pair.media[pair.label - 1].endswith("p1_0.png") and pair.media[2 - pair.label].endswith("p1_1.png")
    dec, _ = run("evalmuse", tmp_path, mode="point", decimals=True, dimensions=True)
    d = next(s for s in dec if s.meta["ratings"] == [5, 4, 5])
    assert d.label == pytest.approx(4.67) and d.task == "image-gen/point+dims"
    assert "Alignment Score: 4.67" in d.target


def test_pickapic_ties_and_skips(tmp_path):
    samples, out = run("pickapic", tmp_path)
    assert sorted(map(str, (s.label for s in samples))) == ["1", "2", "tie"]  # unlabeled / identical rows skipped
    assert all(not Path(m).is_absolute() and (out / m).is_file() for s in samples for m in s.media)
    tie = next(s for s in samples if s.label == "tie")
    assert tie.target.endswith("Both images are equally good.")
    dropped, _ = run("pickapic", tmp_path, ties="drop")
    assert "tie" not in [s.label for s in dropped]


def test_video_points_scales_and_dimensions(tmp_path):
    vf, _ = run("videofeedback", tmp_path, dimensions=True)
    top = next(s for s in vf if s.id.endswith("vf_0"))  # ratings 4,4,3,4,4 -> 5,5,3.67,5,5 -> mean 4.73 -> 5
    assert top.label == 5 and top.dimensions == {"alignment": 5, "physics": 5, "style": 5}
    assert top.meta["ratings"]["dynamic degree"] == 3 and "Physics Score: 5" in top.target
    low = next(s for s in vf if s.id.endswith("vf_1"))  # 1,2,1,1,2 -> mean 1.53 -> 2
    assert low.label == 2
    frames, _ = run("videofeedback", tmp_path, media="frames")
    assert all(isinstance(s.media[0], list) and len(s.media[0]) == 2 for s in frames)
    lift, _ = run("lift_hra", tmp_path)
    crane = next(s for s in lift if "crane" in s.prompt)  # Good/Bad/Good -> 5,1,5 -> 3.67 -> 4
    assert crane.label == 4 and crane.dimensions == {"alignment": 5, "style": 1, "physics": 5}
    assert "Fidelity: Bad. The crane's eyes are missing." in crane.rationale
    horse = next(s for s in lift if "horse" in s.prompt)  # conversations form: Good/Good/Normal -> 4.33 -> 4
    assert horse.prompt == "a horse galloping on a beach" and horse.label == 4


def test_llava_critic_formats_and_rationales(tmp_path):
    samples, _ = run("llava_critic", tmp_path)
    assert llava_critic.convert.skipped == {"pairwise": 1}
    labels = {s.id: s.label for s in samples}
    assert labels["llava_critic/pairwise/vlfeedback_1"] == 1
    assert labels["llava_critic/pairwise/vlfeedback_2"] == 2
    assert labels["llava_critic/pairwise/vlfeedback_3"] == "tie"
    assert labels["llava_critic/pairwise/wildvision_4"] == 2
    assert labels["llava_critic/pointwise/llava_bench_1/point1"] == 4
    assert labels["llava_critic/pointwise/svit_2"] == 8  # 80/100 -> 1 + 80 * 9 / 100 = 8.2 -> 8
    first = next(s for s in samples if s.id.endswith("vlfeedback_1"))
    assert first.rationale.startswith("Response 1 names") and "The better response" not in first.target
    assert first.answers == ["The bus is red.", "It is blue."] and first.prompt == "What color is the bus?"


def test_sharegptvideo_frames_and_score_mapping(tmp_path):
    samples, _ = run("sharegptvideo_dpo", tmp_path)
    q1 = [s for s in samples if s.id.startswith("sharegptvideo_dpo/q1")]
    assert isinstance(q1[0].media[0], list) and len(q1[0].media[0]) == 3  # a folder of frames
    scores = {s.id: s.label for s in q1 if s.task == "video-und/point"}
    assert scores == {"sharegptvideo_dpo/q1/chosen": 10, "sharegptvideo_dpo/q1/rejected": 3}  # 1-5 -> 1-10
    assert all("<video>" not in s.prompt for s in samples)


def test_copy_media_makes_relative_paths(tmp_path):
    samples = list(convert_source("videodpo", FIX / "videodpo", tmp_path / "out", copy_media=True))
    for s in samples:
        assert all(not Path(m).is_absolute() and (tmp_path / "out" / m).is_file() for m in s.media)


# -- bad input ------------------------------------------------------------------------------------------------
def copy_fixture(name, tmp_path) -> Path:
    dst = tmp_path / "src" / name
    shutil.copytree(FIX / name, dst)
    return dst


def test_missing_column_names_file_and_row(tmp_path):
    root = copy_fixture("hpd", tmp_path)
    rows = json.loads((root / "train.json").read_text())
    del rows[1]["prompt"]
    (root / "train.json").write_text(json.dumps(rows))
    with pytest.raises(DataError, match=r"train\.json row 1: missing column\(s\) \['prompt'\]"):
        list(convert_source("hpd", root))


def test_missing_media_file_names_file_and_row(tmp_path):
    root = copy_fixture("evalmuse", tmp_path)
    (root / "images" / "p1_1.png").unlink()
    with pytest.raises(DataError, match=r"train_list\.json row 1: media file 'images/p1_1\.png' not found"):
        list(convert_source("evalmuse", root))
    root = copy_fixture("videofeedback", tmp_path)
    (root / "videos" / "vf_2.mp4").unlink()
    with pytest.raises(DataError, match=r"train-00000-of-00001\.parquet row 2: media file 'vf_2' not found"):
        list(convert_source("videofeedback", root))


def test_parquet_missing_column(tmp_path):
    import pyarrow.parquet as pq

    root = copy_fixture("pickapic", tmp_path)
    f = root / "data" / "train-00000-of-00001.parquet"
    pq.write_table(pq.read_table(f).drop(["label_1"]), f)
    with pytest.raises(DataError, match=r"row 0: missing column\(s\) \['label_1'\]"):
        list(convert_source("pickapic", root, tmp_path / "out"))


def test_out_of_scale_score_is_a_data_error(tmp_path):
    root = copy_fixture("sharegptvideo_dpo", tmp_path)
    lines = (root / "sft_dpo_17k.jsonl").read_text().splitlines()
    row = json.loads(lines[1])
    row["chosen_score"] = 9
    lines[1] = json.dumps(row)
    (root / "sft_dpo_17k.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 1: chosen_score: 9.0 is outside the source scale 1-5"):
        list(convert_source("sharegptvideo_dpo", root))


def test_embedded_media_needs_out_dir_and_options_are_checked():
    with pytest.raises(ConfigError, match="pass out_dir"):
        list(convert_source("pickapic", FIX / "pickapic"))
    with pytest.raises(ConfigError, match=r"no option\(s\) \['colour'\]"):
        convert_source("hpd", FIX / "hpd", colour="red")
    with pytest.raises(ConfigError, match="unknown source 'nope'"):
        options("nope")
    with pytest.raises(DataError, match="no such file or folder"):
        list(convert_source("hpd", FIX / "does-not-exist"))


@pytest.mark.parametrize("votes, words", [(["lots", 0], "'human_preference' must be a number, got 'lots'"),
                                          ([None, 1], "'human_preference' must be a number, got None"),
                                          ([float("nan"), 1], "'human_preference' must be a finite number"),
                                          ([True, 0], "'human_preference' must be a number, got True")])
def test_data_convert_names_the_file_and_row_of_a_bad_score_and_writes_nothing(tmp_path, capsys, votes, words):
    """Issue 24, defect 13: not a traceback naming neither file nor row, and no partial output."""
    from unireward.cli import main

    root = copy_fixture("hpd", tmp_path)
    rows = json.loads((root / "train.json").read_text())
    rows[2]["human_preference"] = votes
    (root / "train.json").write_text(json.dumps(rows))  # (Python's json writes NaN as the literal NaN)
    out = tmp_path / "out" / "hpd.jsonl"
    assert main(["data", "convert", "hpd", str(root), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "train.json row 2" in err and words in err
    assert not out.exists() and not list(out.parent.glob("*.partial"))


def test_data_convert_refuses_a_truncated_image_naming_its_row(tmp_path, capsys):
    from unireward.cli import main

    root = copy_fixture("hpd", tmp_path)
    good = (root / "train" / "00003.jpg").read_bytes()
    (root / "train" / "00003.jpg").write_bytes(good[: len(good) // 2])
    out = tmp_path / "hpd.jsonl"
    out.write_text("an earlier conversion\n")
    assert main(["data", "convert", "hpd", str(root), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "train.json row 1" in err and "00003.jpg does not decode" in err
    assert out.read_text() == "an earlier conversion\n"  # untouched
    root = copy_fixture("pickapic", tmp_path)  # embedded bytes are checked too
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = root / "data" / "train-00000-of-00001.parquet"
    table = pq.read_table(f)
    cut = [v[: len(v) // 2] if i == 1 else v for i, v in enumerate(table.column("jpg_0").to_pylist())]
    pq.write_table(table.set_column(table.schema.get_field_index("jpg_0"), "jpg_0", pa.array(cut)), f)
    with pytest.raises(DataError, match=r"row 1: image column '.*' does not decode"):
        list(convert_source("pickapic", root, tmp_path / "pick"))
